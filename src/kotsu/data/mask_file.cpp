#include "kotsu/data/mask_file.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/data/table.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

PiiCounts mask_texts(TextDataset& d, const PiiMasker& masker) {
  PiiCounts counts{};
  for (auto& t : d.texts) t = masker.mask(t, &counts);
  for (auto& t : d.pairs) t = masker.mask(t, &counts);
  return counts;
}

std::string pii_counts_text(const PiiCounts& counts) {
  std::string s;
  for (size_t k = 0; k < kPiiKinds; ++k)
    if (counts[k] > 0) s += (s.empty() ? "" : ", ") + std::string(pii_name(static_cast<PiiKind>(k))) + " " + std::to_string(counts[k]);
  return s.empty() ? "nothing" : s;
}

MaskReport mask_file(const std::string& in, const std::string& out, const std::vector<std::string>& columns,
                     const PiiMasker& masker) {
  if (columns.empty()) throw Error(in, "", "no text column to mask");
  std::error_code ec;
  if (std::filesystem::equivalent(in, out, ec)) throw Error(out, "", "is the input file: write the masked copy elsewhere");
  MaskReport r;
  const TableFormat format = table_format(in);
  std::string text;
  if (format == TableFormat::Jsonl) {
    Table t = read_table(in);  // validates every line and the columns
    for (const auto& c : columns) t.column(c, "--text-col");
    const std::string raw = read_file(in, size_t(4) << 30);
    size_t pos = 0;
    while (pos < raw.size()) {
      size_t nl = raw.find('\n', pos);
      if (nl == std::string::npos) nl = raw.size();
      std::string s = raw.substr(pos, nl - pos);
      pos = nl + 1;
      if (!s.empty() && s.back() == '\r') s.pop_back();
      if (s.find_first_not_of(" \t") == std::string::npos) {
        text += s + "\n";
        continue;
      }
      nlohmann::ordered_json j = nlohmann::ordered_json::parse(s);
      bool changed = false;
      for (const auto& c : columns) {
        if (!j.contains(c) || !j[c].is_string()) continue;
        const std::string before = j[c].get<std::string>();
        std::string after = masker.mask(before, &r.counts);
        changed |= after != before;
        j[c] = std::move(after);
      }
      ++r.rows;
      r.rows_changed += changed;
      text += j.dump() + "\n";
    }
  } else {
    Table t = read_table(in);
    const bool csv = format == TableFormat::Csv;
    std::vector<size_t> idx;
    for (const auto& c : columns) idx.push_back(t.column(c, "--text-col"));
    auto write_row = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size(); ++i) {
        if (!csv && row[i].find_first_of("\t\n") != std::string::npos)
          throw Error(out, "", "a masked field holds a tab or newline, which TSV cannot carry");
        text += (i ? (csv ? "," : "\t") : "") + (csv ? csv_field(row[i]) : row[i]);
      }
      text += csv ? "\r\n" : "\n";
    };
    write_row(t.columns);
    for (auto& row : t.rows) {
      bool changed = false;
      for (size_t i : idx) {
        std::string after = masker.mask(row[i], &r.counts);
        changed |= after != row[i];
        row[i] = std::move(after);
      }
      ++r.rows;
      r.rows_changed += changed;
      write_row(row);
    }
  }
  write_atomic(out, text);
  return r;
}

}  // namespace kotsu
