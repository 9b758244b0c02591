// kotsu/data/mask_file: writes a copy of a CSV, TSV or JSONL dataset with personal data masked in its text
// columns (text/pii); every other column and field is kept as it was (JSONL values keep their types).
#pragma once
#include <string>
#include <vector>

#include "kotsu/text/pii.hpp"

namespace kotsu {

struct MaskReport {
  size_t rows = 0, rows_changed = 0;
  PiiCounts counts{};
};

// Masks the texts (and text pairs) of a loaded dataset in place; returns the counts.
struct TextDataset;
PiiCounts mask_texts(TextDataset& d, const PiiMasker& masker);
// "email 3, phone 1" (kinds found), or "nothing".
std::string pii_counts_text(const PiiCounts& counts);

// columns: the text columns to mask (each must exist). The output is written atomically; out == in is refused.
MaskReport mask_file(const std::string& in, const std::string& out, const std::vector<std::string>& columns,
                     const PiiMasker& masker);

}  // namespace kotsu
