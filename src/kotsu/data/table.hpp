// kotsu/data/table: reads a CSV (RFC 4180 quoting, CRLF or LF), TSV (tab-separated, no quoting, as the
// GLUE files are) or JSONL (one object per line) file into named string columns.
// ensures: errors name the file, the line (and column for bad UTF-8), and the reason; a row with the
//          wrong number of fields, an unterminated quote or a non-object JSON line is refused, never guessed.
#pragma once
#include <string>
#include <vector>

namespace kotsu {

struct Table {
  std::string path;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> lines;  // 1-based line where each row starts

  // Index of `name`, or a kotsu::Error listing the columns there are.
  size_t column(const std::string& name, const std::string& option) const;
};

enum class TableFormat { Auto, Csv, Tsv, Jsonl };

Table read_table(const std::string& path, TableFormat format = TableFormat::Auto);
// The format a file's extension names (.csv, .tsv/.tab, .jsonl/.ndjson/.json); an error for any other.
TableFormat table_format(const std::string& path);

}  // namespace kotsu
