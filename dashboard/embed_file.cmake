# cmake -DINPUT=file -DOUTPUT=file.cc -DSYMBOL=kName -P embed_file.cmake
# Writes OUTPUT defining `extern const char SYMBOL[]` (INPUT's bytes, NUL-terminated) and
# `extern const unsigned long SYMBOLSize` in namespace towerps::dashboard. The page
# inlines these files in <script>/<style>, so "</script" or "</style" inside is refused.
file(READ "${INPUT}" text)
string(TOLOWER "${text}" lower)
string(FIND "${lower}" "</script" at_script)
string(FIND "${lower}" "</style" at_style)
if(NOT at_script EQUAL -1 OR NOT at_style EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains </script or </style: it cannot be inlined")
endif()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by dashboard/embed_file.cmake; do not edit.\n"
  "namespace towerps::dashboard {\n"
  "extern const char ${SYMBOL}[] = {${bytes}0x00};\n"
  "extern const unsigned long ${SYMBOL}Size = ${size};\n"
  "}  // namespace towerps::dashboard\n")
