#include "kotsu/data/table.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace {

std::string ext_of(const std::string& path) {
  auto dot = path.find_last_of('.');
  if (dot == std::string::npos) return "";
  std::string e = path.substr(dot + 1);
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

void check_utf8(const std::string& path, const std::string& text) {
  size_t bad = utf8_invalid_at(text);
  if (bad == std::string::npos) return;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < bad; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  throw Error(path, "line " + std::to_string(line) + ", column " + std::to_string(col), "invalid UTF-8");
}

void strip_bom(std::string& text) {
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
}

void add_row(Table& t, std::vector<std::string>&& fields, size_t line) {
  if (t.columns.empty()) {
    t.columns = std::move(fields);
    std::map<std::string, int> seen;
    for (auto& c : t.columns)
      if (seen[c]++) throw Error(t.path, "line " + std::to_string(line), "duplicate column name '" + c + "'");
    return;
  }
  if (fields.size() == 1 && fields[0].empty()) return;  // blank line
  if (fields.size() != t.columns.size())
    throw Error(t.path, "line " + std::to_string(line),
                "has " + std::to_string(fields.size()) + " fields, the header has " + std::to_string(t.columns.size()));
  t.rows.push_back(std::move(fields));
  t.lines.push_back(line);
}

void parse_csv(Table& t, const std::string& s, char sep, bool quoting) {
  std::vector<std::string> fields;
  std::string field;
  size_t line = 1, row_line = 1;
  size_t i = 0;
  bool field_started = false;
  while (i < s.size()) {
    char c = s[i];
    if (quoting && c == '"' && !field_started) {
      size_t quote_line = line;
      ++i;
      for (;;) {
        if (i >= s.size()) throw Error(t.path, "line " + std::to_string(quote_line), "unterminated quoted field");
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (s[i] == '\n') ++line;
        field.push_back(s[i++]);
      }
      field_started = true;
      if (i < s.size() && s[i] != sep && s[i] != '\n' && s[i] != '\r')
        throw Error(t.path, "line " + std::to_string(line), "characters after a closing quote");
      continue;
    }
    if (c == sep) {
      fields.push_back(std::move(field));
      field.clear();
      field_started = false;
      ++i;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      ++i;
      fields.push_back(std::move(field));
      field.clear();
      field_started = false;
      add_row(t, std::move(fields), row_line);
      fields.clear();
      ++line;
      row_line = line;
    } else {
      field.push_back(c);
      field_started = true;
      ++i;
    }
  }
  if (field_started || !fields.empty()) {
    fields.push_back(std::move(field));
    add_row(t, std::move(fields), row_line);
  }
}

void parse_jsonl(Table& t, const std::string& s) {
  std::map<std::string, size_t> col_index;
  std::vector<nlohmann::json> objects;
  std::vector<size_t> lines;
  size_t pos = 0, line = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    ++line;
    std::string_view l(s.data() + pos, nl - pos);
    pos = nl + 1;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const nlohmann::json::exception& e) {
      throw Error(t.path, "line " + std::to_string(line), std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object()) throw Error(t.path, "line " + std::to_string(line), "is not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!col_index.count(it.key())) {
        col_index[it.key()] = t.columns.size();
        t.columns.push_back(it.key());
      }
    objects.push_back(std::move(j));
    lines.push_back(line);
  }
  for (size_t r = 0; r < objects.size(); ++r) {
    std::vector<std::string> row(t.columns.size());
    for (auto it = objects[r].begin(); it != objects[r].end(); ++it) {
      const auto& v = it.value();
      std::string& cell = row[col_index[it.key()]];
      if (v.is_string()) cell = v.get<std::string>();
      else if (v.is_number_integer() || v.is_boolean() || v.is_number()) cell = v.dump();
      else if (v.is_null()) cell.clear();
      else cell = v.dump();
    }
    t.rows.push_back(std::move(row));
    t.lines.push_back(lines[r]);
  }
}

}  // namespace

size_t Table::column(const std::string& name, const std::string& option) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return i;
  std::string have;
  for (auto& c : columns) have += (have.empty() ? "" : ", ") + c;
  throw Error(path, option, "column '" + name + "' not found; the columns are: " + have);
}

TableFormat table_format(const std::string& path) {
  const std::string e = ext_of(path);
  if (e == "csv") return TableFormat::Csv;
  if (e == "tsv" || e == "tab") return TableFormat::Tsv;
  if (e == "jsonl" || e == "ndjson" || e == "json") return TableFormat::Jsonl;
  throw Error(path, "", "unknown data format: use a .csv, .tsv or .jsonl file");
}

Table read_table(const std::string& path, TableFormat format) {
  Table t;
  t.path = path;
  std::string text = read_file(path, size_t(4) << 30);
  strip_bom(text);
  check_utf8(path, text);
  if (format == TableFormat::Auto) format = table_format(path);
  if (format == TableFormat::Jsonl) parse_jsonl(t, text);
  else parse_csv(t, text, format == TableFormat::Csv ? ',' : '\t', format == TableFormat::Csv);
  if (t.columns.empty()) throw Error(path, "", "file is empty");
  return t;
}

}  // namespace kotsu
