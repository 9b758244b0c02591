#include <gtest/gtest.h>

#include "kotsu/core/runtime.hpp"

int main(int argc, char** argv) {
  kotsu::runtime_init();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
