// kotsu/data/audit: what is wrong with a labelled text dataset before any training: class counts and
// imbalance, empty / very short / over-long texts, exact duplicates (after normalising case, width and
// spacing), the same text under different labels, near duplicates (MinHash over character 5-grams of
// the text without punctuation, with LSH banding, confirmed by exact Jaccard similarity), and rows shared between a training and a test file
// (leakage). Also the confident-learning ranking of likely mislabelled rows from out-of-fold probabilities
// (Northcutt et al. 2021: per-class thresholds = the mean probability of each class on the rows labelled
// with it; a row is a suspect when another class reaches its threshold and beats the given label), with
// every row ranked by the probability of its given label, lowest first (cleanlab's "self-confidence"
// ranking: on BANKING77 with 5% flipped labels it finds far more of them at the top than ranking the
// suspects first, see bench/audit). Written by hand: no C++ library in Debian does this.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct AuditRow {
  std::string text, label, source;  // source: the file it came from
  size_t line = 0;
};

struct AuditOptions {
  double near_threshold = 0.8;  // Jaccard similarity of character 5-gram sets
  int64_t min_chars = 3;        // shorter (after trimming) is "too short"
  int64_t max_tokens = 0;       // > 0: texts with more tokens than this are "too long" (truncated in training)
  size_t max_listed = 50;       // examples listed per finding in the report
};

// The normalised form duplicates are compared on: NFKC, lower case, runs of white space as one space, trimmed.
std::string audit_normal_form(const std::string& text);
// Rows grouped by equal non-empty keys: groups within the first source (first[i]) are exact duplicates
// when they share one label, conflicting labels otherwise; groups spanning both sources are leakage.
// Returns {exact_duplicates {extra_rows, examples}, conflicting_labels {groups, examples}, leak_groups,
// leaks (pairs)}, at most max_listed examples each, rows described by ref(i).
nlohmann::ordered_json equal_key_findings(const std::vector<std::string>& keys, const std::vector<bool>& first, const std::vector<std::string>& labels,
                                          const std::function<nlohmann::ordered_json(size_t)>& ref, size_t max_listed);

// The form near duplicates are compared on: the normal form without punctuation (Unicode P* categories)
// and spaces, so "Call me, now!" and "call me now" are equal, and "words.Every" near "words every".
std::string audit_loose_form(const std::string& normal);
// Pairs (i, j), i < j, of texts whose character 5-gram sets have Jaccard similarity >= threshold (equal
// texts included). Deterministic.
std::vector<std::pair<size_t, size_t>> near_duplicate_pairs(const std::vector<std::string>& texts, double threshold);

// token_counts: one per row (empty: length checks on characters only). rows from a second file (source !=
// the first row's) are checked for leakage against the first.
nlohmann::json audit_texts(const std::vector<AuditRow>& rows, const std::vector<int64_t>& token_counts, const AuditOptions& o);

// Likely mislabelled rows: probs row-major [n, k] out-of-fold probabilities, y the given labels. Returns
// all rows ranked from most to least suspicious (by the probability of the given label, ascending) and
// which of them the confident joint counts as label issues.
struct MislabelRanking {
  std::vector<size_t> order;
  size_t suspects = 0;
  std::vector<bool> suspect;  // per row
  std::vector<double> thresholds;  // per class
};
MislabelRanking rank_mislabels(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k);

}  // namespace kotsu
