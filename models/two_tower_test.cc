#include <vector>

#include "gtest/gtest.h"
#include "models/two_tower.h"

namespace towerps::models {
namespace {

TowerConfig MakeTower(std::vector<int> inputs, std::vector<int> mlp, int cross, int out) {
  TowerConfig t;
  t.input_dims = std::move(inputs);
  t.mlp_hidden = std::move(mlp);
  t.cross_layers = cross;
  t.output_dim = out;
  return t;
}

// Every branch shape a config can give a tower: input blocks (one per pooled feature,
// concat pooling = a wider block, a dense block), no MLP, an MLP ending at D (no
// mlp_to_input) or elsewhere, no cross / some cross layers, neither branch.
TEST(DenseParamCountTest, EqualsTheBuiltModelsParameters) {
  const std::vector<TowerConfig> towers = {
      MakeTower({8}, {}, 0, 4),                 // neither branch: s = x0
      MakeTower({8}, {16}, 0, 4),               // MLP only, h_last != D
      MakeTower({8}, {16, 8}, 0, 4),            // MLP only, h_last == D
      MakeTower({8}, {}, 3, 4),                 // cross only
      MakeTower({4, 4, 16, 3}, {32, 7}, 2, 5),  // several blocks (sum, concat, dense)
      MakeTower({12, 12}, {24}, 1, 16),         // h_last == D with two blocks
      MakeTower({1}, {1}, 1, 1),                // the smallest of everything
  };
  for (size_t u = 0; u < towers.size(); ++u) {
    for (size_t i = 0; i < towers.size(); ++i) {
      TwoTowerConfig c;
      c.user = towers[u];
      c.item = towers[i];
      c.item.output_dim = c.user.output_dim;  // the towers must agree
      if (i % 2 == 1) c.item.activation = ActivationKind::kSilu;
      if (u % 3 == 2) c.user.l2_normalize = false;
      auto model = TwoTower::Create(c);
      ASSERT_TRUE(model.ok()) << model.status() << " user " << u << " item " << i;
      EXPECT_EQ(DenseParamCount(c), (*model)->params().size()) << "user " << u << " item " << i;
      EXPECT_EQ(DenseParamCount(c), TowerDenseParamCount(c.user) + TowerDenseParamCount(c.item));
    }
  }
}

}  // namespace
}  // namespace towerps::models
