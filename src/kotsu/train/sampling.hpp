// kotsu/train/sampling: each epoch's order of training examples, optionally rebalanced across classes:
// oversample draws extra examples of the smaller classes (with replacement) until every class has as many
// as the largest; undersample keeps a fresh random subset of each class the size of the smallest.
// Every original example appears at least once per epoch with oversampling.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kotsu {

// balance: none | oversample | undersample | class-weights (the last reorders nothing; the loss is weighted)
std::vector<size_t> epoch_order(const std::vector<int64_t>& targets, const std::string& balance, std::mt19937_64& rng);
// How many examples epoch_order returns (the same every epoch).
size_t epoch_size(const std::vector<int64_t>& targets, const std::string& balance);

}  // namespace kotsu
