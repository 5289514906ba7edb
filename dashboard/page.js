// towerps dashboard page script: renders the run data (JSON in #run-data) with Chart.js
// (inlined before this script). Every string from the run is shown through textContent
// or drawn on a canvas, never parsed as HTML. When done it fills #selfcheck:
//   data-charts  charts drawn            data-empty   ids of charts without points
//   data-errors  JavaScript errors seen  data-problems malformed input lines reported
// and appends " [rendered]" to the title (tests/integration/dashboard_test.sh reads them).
(function () {
  'use strict';
  var errors = window.towerpsErrors;
  var drawn = 0, empty = [];
  var MARK_COLORS = {checkpoint: '#2e7d32', dead: '#c62828', replaced: '#ef6c00',
                     recovery: '#6a1b9a'};
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                 '#7f7f7f', '#bcbd22', '#17becf'];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(v) {
    if (typeof v !== 'number' || !isFinite(v)) return String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
  }
  function bytes(n) {
    if (typeof n !== 'number' || n < 0) return '?';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }
  function clock(ms) { return ms > 0 ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '?'; }
  function duration(s) {
    if (!(s >= 0)) return '?';
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = Math.round(s % 60);
    return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + sec + ' s';
  }
  // Time since the start: m:ss, or seconds with a decimal on short runs.
  var shortRun = false;
  function elapsed(x) {
    if (shortRun) return (Math.round(x * 10) / 10) + ' s';
    var m = Math.floor(x / 60), s = Math.round(x - 60 * m);
    if (s === 60) { m++; s = 0; }
    return m + ':' + (s < 10 ? '0' : '') + s;
  }
  function section(title) {
    var s = el('section', 'card');
    s.appendChild(el('h2', null, title));
    document.getElementById('main').appendChild(s);
    return s;
  }
  function emptyNote(parent, id, reason) {
    empty.push(id);
    parent.appendChild(el('p', 'empty', 'No data: ' + reason));
  }
  function table(parent, head, rows) {
    var t = el('table'), tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c) { row.appendChild(el('td', null, c)); });
      t.appendChild(row);
    });
    parent.appendChild(t);
  }

  // Vertical marks (checkpoints, dead and replaced nodes, recoveries) on time charts.
  var marksPlugin = {
    id: 'towerpsMarks',
    afterDatasetsDraw: function (chart, args, opts) {
      var marks = opts.marks || [], x = chart.scales.x, area = chart.chartArea;
      if (!x || !marks.length) return;
      var ctx = chart.ctx;
      ctx.save();
      marks.forEach(function (m) {
        if (m.x < x.min || m.x > x.max) return;
        var px = x.getPixelForValue(m.x);
        ctx.strokeStyle = MARK_COLORS[m.kind] || '#555';
        ctx.globalAlpha = m.kind === 'checkpoint' ? 0.35 : 0.8;
        ctx.setLineDash(m.kind === 'checkpoint' ? [4, 4] : []);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
      });
      ctx.restore();
    }
  };

  function timeChart(data, def) {
    var card = section(def.title);
    var points = def.series.reduce(function (n, s) { return n + s.x.length; }, 0);
    if (!points) return emptyNote(card, def.id, def.empty);
    var datasets = [], all = [];
    def.series.forEach(function (s, i) {
      var color = PALETTE[i % PALETTE.length];
      var xy = s.x.map(function (x, j) { all.push({x: x, y: s.y[j]}); return {x: x, y: s.y[j]}; });
      datasets.push({label: s.label, data: xy, borderColor: color, backgroundColor: color,
                     borderWidth: 1.5, pointRadius: xy.length < 3 ? 3 : 0, tension: 0});
      if (s.lo) {  // downsampled: the min..max band of each point keeps spikes visible
        datasets.push({label: s.label + ' max', data: s.x.map(function (x, j) { return {x: x, y: s.hi[j]}; }),
                       borderWidth: 0, pointRadius: 0, fill: '+1', backgroundColor: color + '30',
                       towerpsBand: true});
        datasets.push({label: s.label + ' min', data: s.x.map(function (x, j) { return {x: x, y: s.lo[j]}; }),
                       borderWidth: 0, pointRadius: 0, fill: false, towerpsBand: true});
      }
    });
    if (def.smoothed && all.length > 1) {
      all.sort(function (a, b) { return a.x - b.x; });
      var ema = null, smooth = all.map(function (p) {
        ema = ema === null ? p.y : 0.9 * ema + 0.1 * p.y;
        return {x: p.x, y: ema};
      });
      datasets.push({label: 'smoothed (all)', data: smooth, borderColor: '#000', borderWidth: 2.5,
                     pointRadius: 0, tension: 0});
    }
    var canvas = el('canvas');
    var box = el('div', 'chart');
    box.appendChild(canvas);
    card.appendChild(box);
    card.dataset.chart = def.id;
    new Chart(canvas, {
      type: 'line', data: {datasets: datasets},
      options: {
        animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
        interaction: {mode: 'nearest', intersect: false},
        scales: {
          x: {type: 'linear', min: 0, max: data.span_s > 0 ? data.span_s : undefined,
              title: {display: true, text: 'time since start' + (shortRun ? '' : ' (m:ss)')},
              ticks: {callback: function (v) { return elapsed(v); }}},
          y: {title: {display: true, text: def.unit}}
        },
        plugins: {
          legend: {labels: {boxWidth: 12, filter: function (item, d) {
            return !d.datasets[item.datasetIndex].towerpsBand; }}},
          towerpsMarks: {marks: data.marks}
        }
      },
      plugins: [marksPlugin]
    });
    drawn++;
  }

  function barChart(parent, id, labels, datasets, yTitle, title) {
    var canvas = el('canvas'), box = el('div', 'chart');
    box.appendChild(canvas);
    parent.appendChild(box);
    new Chart(canvas, {type: 'bar', data: {labels: labels, datasets: datasets},
      options: {animation: false, maintainAspectRatio: false,
                plugins: {title: {display: !!title, text: title || ''}},
                scales: {y: {beginAtZero: true, title: {display: true, text: yTitle}}}}});
    parent.dataset.chart = id;
    drawn++;
  }

  function header(data) {
    var h = data.header, box = document.getElementById('header');
    box.appendChild(el('h1', null, 'towerps run ' + (h.job_id || data.title)));
    var rows = [
      ['run directory', data.run_dir], ['config', h.config || '?'], ['data', h.dataset || '?'],
      ['started', clock(h.start_ms)],
      ['duration', duration(h.duration_s) + (h.ended ? '' : ' (running or not ended)')],
      ['phase', (h.phase || '?') + (h.reason ? ' (' + h.reason + ')' : '')],
      ['mode', h.embedded ? 'embedded (towerps train)' : !(h.servers || h.workers) ?
        'processes: ' + (h.roles.join(', ') || 'none yet') :
        'cluster: ' + h.servers + ' servers, ' + h.workers + ' workers, staleness ' + h.staleness +
        (h.planned_steps ? ', ' + fmt(h.planned_steps) + ' planned steps' : '') +
        (h.recovered ? ', taken over by a recovered scheduler' : '')],
      ['metrics lines', fmt(h.lines) + (data.files.metrics ? '' : ' (no metrics.jsonl)')]
    ];
    h.finals.forEach(function (f) { rows.push([f[0], fmt(f[1])]); });
    var ev = data.evaluations[data.evaluations.length - 1];
    if (ev) ev.metrics.forEach(function (m) {
      if (m[0].indexOf('popularity_') !== 0) rows.push(['final ' + m[0] + ' (step ' + ev.step + ')', fmt(m[1])]);
    });
    var dl = el('dl');
    rows.forEach(function (r) { dl.appendChild(el('dt', null, r[0])); dl.appendChild(el('dd', null, r[1])); });
    box.appendChild(dl);
    if (data.watch) box.appendChild(el('p', 'note', 'Watching: this page is rewritten and reloads every ' +
        Math.round(data.watch_interval_ms / 1000) + ' s. Rendered ' + clock(data.generated_ms) + '.'));
  }

  function problems(data) {
    var p = data.problems, d = data.dropped;
    if (!p.total && !d.series && !d.events && !d.evaluations) return;
    var card = section('Problems reading the run');
    card.id = 'problems';
    card.classList.add('warn');
    if (p.total) {
      card.appendChild(el('p', null, p.total + ' malformed line(s) skipped' +
          (p.total > p.kept.length ? ' (the first ' + p.kept.length + ' below)' : '') + ':'));
      var ul = el('ul');
      p.kept.forEach(function (m) { ul.appendChild(el('li', null, m)); });
      card.appendChild(ul);
    }
    if (d.series) card.appendChild(el('p', null, d.series + ' series past the limit not shown, e.g. ' +
        d.examples.join(', ')));
    if (d.events || d.evaluations) card.appendChild(el('p', null, 'older entries not shown: ' +
        d.events + ' events, ' + d.evaluations + ' evaluations'));
  }

  function marksLegend(data) {
    var p = el('p', 'legend');
    Object.keys(MARK_COLORS).forEach(function (k) {
      var n = data.marks.filter(function (m) { return m.kind === k; }).length;
      var s = el('span', null, k + ' (' + n + ')');
      s.style.borderLeft = '3px solid ' + MARK_COLORS[k];
      p.appendChild(s);
    });
    document.getElementById('main').appendChild(p);
  }

  function checkpoints(data) {
    var card = section('Checkpoints');
    if (!data.checkpoints.length) return emptyNote(card, 'checkpoints',
        data.files.events ? 'no checkpoint event yet' : 'no events.jsonl in the run directory');
    table(card, ['when', 'step', 'size', 'duration', 'kind', 'directory'],
      data.checkpoints.map(function (c) {
        return [elapsed(c.x) + ' (' + clock(c.ts_ms) + ')', fmt(c.step), bytes(c.bytes),
                c.duration_ms >= 0 ? fmt(c.duration_ms) + ' ms' : '?',
                (c.incremental ? 'incremental' : 'full') + (c.ok ? '' : ' FAILED: ' + c.error), c.dir];
      }));
    var nodes = data.marks.filter(function (m) { return m.kind !== 'checkpoint'; });
    if (nodes.length) {
      card.appendChild(el('h3', null, 'Nodes'));
      table(card, ['when', 'event'], nodes.map(function (m) { return [elapsed(m.x), m.label]; }));
    }
  }

  function evaluations(data) {
    var card = section('Evaluation: model beside popularity');
    var ev = data.evaluations[data.evaluations.length - 1];
    if (!ev || !ev.metrics.length) return emptyNote(card, 'evaluation',
        data.files.evaluations ? 'no evaluation with metrics yet' :
        'no evaluations.jsonl (run towerps evaluate --run_dir=<this run>)');
    var names = [], model = [], pop = [];
    ev.metrics.forEach(function (m) {
      if (m[0].indexOf('popularity_') === 0) return;
      var p = ev.metrics.filter(function (q) { return q[0] === 'popularity_' + m[0]; })[0];
      names.push(m[0]); model.push(m[1]); pop.push(p ? p[1] : null);
    });
    card.appendChild(el('p', null, 'Step ' + ev.step + ', ' + (ev.split || '?') + ' split, checkpoint ' + ev.checkpoint));
    barChart(card, 'evaluation', names, [
      {label: 'model', data: model, backgroundColor: PALETTE[0]},
      {label: 'popularity', data: pop, backgroundColor: PALETTE[7]}], 'value');
    table(card, ['when', 'step'].concat(names), data.evaluations.map(function (e) {
      return [clock(e.ts_ms), fmt(e.step)].concat(names.map(function (n) {
        var m = e.metrics.filter(function (q) { return q[0] === n; })[0];
        return m ? fmt(m[1]) : '';
      }));
    }));
  }

  function health(data) {
    var card = section('Embedding health');
    var ev = data.evaluations.filter(function (e) { return e.health; }).pop();
    if (!ev) return emptyNote(card, 'embedding_norms', 'no evaluation with embedding_health yet');
    var h = ev.health, known = h.collapse_threshold >= 0;
    if (h.collapse_warning) card.appendChild(el('p', 'collapse',
        'COLLAPSE WARNING: item embeddings point the same way (mean pairwise cosine ' +
        fmt(h.mean_cosine) + (known ? ' > ' + fmt(h.collapse_threshold) : '') + ')'));
    function spread(q) { return q.length === 7 ? fmt(q[0]) + ' / ' + fmt(q[3]) + ' / ' + fmt(q[6]) : 'no such table'; }
    var head = ['step', 'item coverage',
                'mean pairwise cosine of items' + (known ? ' (collapse above ' + fmt(h.collapse_threshold) + ')' : ''),
                'item ID row norm min / p50 / max', 'user ID row norm min / p50 / max'];
    var row = [fmt(ev.step), h.coverage >= 0 ? (100 * h.coverage).toFixed(1) + ' %' : '?',
               fmt(h.mean_cosine), spread(h.item_id_quantiles), spread(h.user_id_quantiles)];
    if (h.item_quantiles.length) {  // only for an item tower that is not L2-normalised
      head.push('item tower output norm min / p50 / max');
      row.push(spread(h.item_quantiles));
    }
    table(card, head, [row]);
    if (!h.counts.length) return emptyNote(card, 'embedding_norms', 'no item ID embedding rows (no item_id table)');
    var labels = h.counts.map(function (c, i) { return fmt(h.edges[i]) + '-' + fmt(h.edges[i + 1]); });
    barChart(card, 'embedding_norms', labels,
             [{label: 'item ID rows per L2-norm bin', data: h.counts, backgroundColor: PALETTE[2]}],
             'rows', 'item ID embedding rows, L2 norm' +
             (h.item_id_rows >= 0 ? ' (' + fmt(h.item_id_rows) + ' rows)' : ''));
  }

  try {
    var data = JSON.parse(document.getElementById('run-data').textContent);
    shortRun = data.span_s < 120;
    header(data);
    problems(data);
    marksLegend(data);
    data.charts.forEach(function (c) { timeChart(data, c); });
    checkpoints(data);
    evaluations(data);
    health(data);
    document.getElementById('selfcheck').dataset.problems = String(data.problems.total);
  } catch (e) {
    errors.push('render: ' + (e && e.message ? e.message : String(e)));
  }
  var check = document.getElementById('selfcheck');
  check.dataset.charts = String(drawn);
  check.dataset.empty = empty.join(' ');
  check.dataset.errors = errors.join(' | ');
  check.textContent = drawn + ' charts; empty: ' + (empty.join(', ') || 'none') +
      '; errors: ' + (errors.length ? errors.join(' | ') : 'none');
  document.title += ' [rendered]';
})();
