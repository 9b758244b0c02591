#include "kotsu/text/jinja.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <vector>

#include "kotsu/core/error.hpp"

namespace kotsu {

using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------- values

struct Value {
  json j;
  bool undef = false;
  static Value undefined() { return {json(), true}; }
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Python's repr: the shortest string that reads back, with ".0" on integral values
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  const auto e = s.find('e');
  if (e != std::string::npos) {  // Python: 1e-05, 1e+16
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    const char sign = ex[0] == '-' ? '-' : '+';
    if (ex[0] == '-' || ex[0] == '+') ex = ex.substr(1);
    while (ex.size() > 2 && ex[0] == '0') ex = ex.substr(1);
    if (ex.size() < 2) ex = "0" + ex;
    return mant + "e" + sign + ex;
  }
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

// A macro, or a global function, as a value in a scope frame: an object under these keys (a context's JSON
// never reaches the frames, so it cannot pose as one).
const char* const kMacroKey = "\x01kotsu-macro";
const char* const kFunctionKey = "\x01kotsu-function";
const char* const kFunctions[] = {"raise_exception", "strftime_now", "namespace", "range"};

bool is_callable(const json& j) { return j.is_object() && (j.contains(kMacroKey) || j.contains(kFunctionKey)); }

std::string py_repr(const json& j);

std::string py_str(const Value& v) {
  if (v.undef) return "";
  const json& j = v.j;
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains(kMacroKey)) return "<Macro '" + j["name"].get<std::string>() + "'>";
  if (j.is_object() && j.contains(kFunctionKey)) return "<function " + j[kFunctionKey].get<std::string>() + ">";
  return py_repr(j);
}

std::string py_quote(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  std::string out(1, dq ? '"' : '\'');
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == (dq ? '"' : '\'')) out += std::string("\\") + c;
    else out += c;
  }
  return out + (dq ? '"' : '\'');
}

std::string py_repr(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return j.get<bool>() ? "True" : "False";
    case json::value_t::number_integer: return std::to_string(j.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(j.get<uint64_t>());
    case json::value_t::number_float: return py_float(j.get<double>());
    case json::value_t::string: return py_quote(j.get<std::string>());
    case json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + py_repr(j[i]);
      return s + "]";
    }
    case json::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it, first = false) s += (first ? "" : ", ") + py_quote(it.key()) + ": " + py_repr(it.value());
      return s + "}";
    }
    default: return "";
  }
}

// Python's json.dumps(x, ensure_ascii=False) with the default ", " / ": " separators (transformers' tojson).
std::string py_json(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return j.get<bool>() ? "true" : "false";
    case json::value_t::number_float: return py_float(j.get<double>());
    case json::value_t::string: {
      std::string out = "\"";
      for (unsigned char c : j.get<std::string>()) {
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\b') out += "\\b";
        else if (c == '\f') out += "\\f";
        else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
      }
      return out + "\"";
    }
    case json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + py_json(j[i]);
      return s + "]";
    }
    case json::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it, first = false) s += (first ? "" : ", ") + py_json(it.key()) + ": " + py_json(it.value());
      return s + "}";
    }
    default: return j.dump();
  }
}

bool truthy(const Value& v) {
  if (v.undef) return false;
  const json& j = v.j;
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer() || j.is_number_unsigned()) return j.get<int64_t>() != 0;
  if (j.is_number_float()) return j.get<double>() != 0;
  if (j.is_string()) return !j.get<std::string>().empty();
  return !j.empty();
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Python indexes strings by code point: the UTF-8 string split into them.
std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t j = i + 1;
    while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string strip_chars(const std::string& s, bool left, bool right, const std::string& chars = "") {
  auto strip = [&](char c) { return chars.empty() ? is_space(c) : chars.find(c) != std::string::npos; };
  size_t a = 0, b = s.size();
  if (left)
    while (a < b && strip(s[a])) ++a;
  if (right)
    while (b > a && strip(s[b - 1])) --b;
  return s.substr(a, b - a);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c));
    c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    start = !alpha;
  }
  return s;
}
std::string capitalize(std::string s) {
  s = lower(s);
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
std::string replace_all(std::string s, const std::string& a, const std::string& b) {
  if (a.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(a, pos)) != std::string::npos) {
    s.replace(pos, a.size(), b);
    pos += b.size();
  }
  return s;
}

// ---------------------------------------------------------------- tokens of expressions

struct Tok {
  enum Kind { Name, Str, Int, Float, Op, End } kind = End;
  std::string text;
};

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct Expr {
  enum Kind { Literal, Var, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, Cond, List, Dict } kind;
  json literal;
  std::string name;              // Var, Attr, Call (method name when callee is an Attr), Filter, Test, Unary/Binary op
  std::vector<ExprPtr> args;     // operands / arguments
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;          // Test: "is not"
  explicit Expr(Kind k) : kind(k) {}
};

// ---------------------------------------------------------------- template tree

struct Node;
using Body = std::vector<std::shared_ptr<Node>>;

struct Node {
  enum Kind { Text, Output, If, For, Set, Break, Continue, Macro } kind;
  std::string text;                                 // Text
  ExprPtr expr;                                     // Output, Set value, For iterable
  std::vector<std::pair<ExprPtr, Body>> branches;   // If (cond, body)
  Body body, else_body;                             // For (and If's else)
  std::vector<std::string> targets;                 // For loop variables; Set: {name} or {name, attr}; Macro: {name, params...}
  std::vector<ExprPtr> defaults;                    // Macro: each parameter's default (null: none)
  ExprPtr filter;                                   // For ... if cond
  size_t macro_index = 0;                           // Macro: its place in JinjaTemplate::Impl::macros
  int line = 1;
  explicit Node(Kind k) : kind(k) {}
};

struct Segment {
  enum Kind { Text, Expr, Stmt } kind;
  std::string text;
  int line;
};

}  // namespace

struct JinjaTemplate::Impl {
  std::string name;
  Body root;
  mutable std::vector<const Node*> macros;  // every {% macro %} of the template, by the index its value holds

  [[noreturn]] void fail(int line, const std::string& why) const { throw Error(name, "line " + std::to_string(line), why); }

  // ---- lexing into text / {{ }} / {% %} segments, with whitespace control, trim_blocks and lstrip_blocks
  std::vector<Segment> segments(std::string src) const {
    if (src.size() >= 2 && src.compare(src.size() - 2, 2, "\r\n") == 0) src.resize(src.size() - 2);
    else if (!src.empty() && src.back() == '\n') src.pop_back();  // keep_trailing_newline=False
    std::vector<Segment> out;
    size_t pos = 0;
    auto line_at = [&](size_t p) { return 1 + static_cast<int>(std::count(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(p), '\n')); };
    while (pos <= src.size()) {
      size_t at = pos;
      while ((at = src.find('{', at)) != std::string::npos && !(at + 1 < src.size() && (src[at + 1] == '{' || src[at + 1] == '%' || src[at + 1] == '#'))) ++at;
      std::string text = src.substr(pos, at == std::string::npos ? std::string::npos : at - pos);
      if (at == std::string::npos) {
        if (!text.empty()) out.push_back({Segment::Text, text, line_at(pos)});
        break;
      }
      const char kind = src[at + 1];
      size_t inner = at + 2;
      const bool left_minus = inner < src.size() && src[inner] == '-', left_plus = inner < src.size() && src[inner] == '+';
      if (left_minus || left_plus) ++inner;
      if (left_minus) {
        text = strip_chars(text, false, true);
      } else if (kind != '{' && !left_plus) {  // lstrip_blocks: a block tag alone at the start of its line
        const size_t nl = src.rfind('\n', at == 0 ? 0 : at - 1);
        const size_t ls = nl == std::string::npos || at == 0 ? 0 : nl + 1;
        if (ls >= pos && std::all_of(src.begin() + static_cast<std::ptrdiff_t>(ls), src.begin() + static_cast<std::ptrdiff_t>(at), [](char c) { return c == ' ' || c == '\t'; }))
          text.resize(text.size() - (at - ls));
      }
      if (!text.empty()) out.push_back({Segment::Text, text, line_at(pos)});
      // the closing marker, skipping string literals inside expressions
      const char close = kind == '{' ? '}' : kind == '%' ? '%' : '#';
      size_t e = inner;
      char quote = 0;
      for (; e + 1 < src.size(); ++e) {
        const char c = src[e];
        if (kind != '#') {
          if (quote) {
            if (c == '\\') ++e;
            else if (c == quote) quote = 0;
            continue;
          }
          if (c == '\'' || c == '"') {
            quote = c;
            continue;
          }
        }
        if (c == close && src[e + 1] == '}') break;
      }
      if (e + 1 >= src.size()) fail(line_at(at), std::string("unclosed '{") + kind + "'");
      size_t inner_end = e;
      const bool right_minus = inner_end > inner && src[inner_end - 1] == '-';
      if (right_minus || (inner_end > inner && src[inner_end - 1] == '+')) --inner_end;
      if (kind != '#') out.push_back({kind == '{' ? Segment::Expr : Segment::Stmt, src.substr(inner, inner_end - inner), line_at(at)});
      pos = e + 2;
      if (right_minus) {
        while (pos < src.size() && is_space(src[pos])) ++pos;
      } else if (kind != '{') {  // trim_blocks: the newline after a block tag
        if (src.compare(pos, 2, "\r\n") == 0) pos += 2;
        else if (pos < src.size() && src[pos] == '\n') ++pos;
      }
    }
    return out;
  }

  // ---- expression tokens
  std::vector<Tok> tokenize(const std::string& s, int line) const {
    std::vector<Tok> out;
    size_t i = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (is_space(c)) {
        ++i;
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
        out.push_back({Tok::Name, s.substr(i, j - i)});
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t j = i;
        bool is_float = false;
        while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_' ||
                                (s[j] == '.' && j + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[j + 1]))) || s[j] == 'e' || s[j] == 'E')) {
          is_float = is_float || s[j] == '.' || s[j] == 'e' || s[j] == 'E';
          ++j;
        }
        out.push_back({is_float ? Tok::Float : Tok::Int, s.substr(i, j - i)});
        i = j;
      } else if (c == '\'' || c == '"') {
        std::string v;
        size_t j = i + 1;
        for (; j < s.size() && s[j] != c; ++j) {
          if (s[j] == '\\' && j + 1 < s.size()) {
            const char n = s[++j];
            v += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
          } else {
            v += s[j];
          }
        }
        if (j >= s.size()) fail(line, "unterminated string");
        out.push_back({Tok::Str, v});
        i = j + 1;
      } else {
        static const char* two[] = {"//", "==", "!=", "<=", ">=", "**"};
        std::string op(1, c);
        for (const char* t : two)
          if (s.compare(i, 2, t) == 0) op = t;
        if (std::string("()[]{},:.|+-*/%~<>=!").find(c) == std::string::npos) fail(line, std::string("unexpected character '") + c + "'");
        out.push_back({Tok::Op, op});
        i += op.size();
      }
    }
    out.push_back({Tok::End, ""});
    return out;
  }

  // ---- expression parser (Jinja2's precedence)
  struct Parser {
    const Impl& impl;
    std::vector<Tok> t;
    size_t p = 0;
    int line;

    const Tok& peek(size_t k = 0) const { return t[std::min(p + k, t.size() - 1)]; }
    bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == Tok::Op && peek(k).text == op; }
    bool is_name(const char* n, size_t k = 0) const { return peek(k).kind == Tok::Name && peek(k).text == n; }
    void expect_op(const char* op) {
      if (!is_op(op)) impl.fail(line, std::string("expected '") + op + "', found '" + peek().text + "'");
      ++p;
    }
    std::string expect_name() {
      if (peek().kind != Tok::Name) impl.fail(line, "expected a name, found '" + peek().text + "'");
      return t[p++].text;
    }
    static ExprPtr make(Expr::Kind k, std::string name = "", std::vector<ExprPtr> args = {}) {
      auto e = std::make_shared<Expr>(k);
      e->name = std::move(name);
      e->args = std::move(args);
      return e;
    }

    ExprPtr expression() {
      ExprPtr e = or_expr();
      if (is_name("if")) {
        ++p;
        ExprPtr cond = or_expr();
        ExprPtr other;
        if (is_name("else")) {
          ++p;
          other = expression();
        }
        auto c = make(Expr::Cond, "", {e, cond});
        if (other) c->args.push_back(other);
        return c;
      }
      return e;
    }
    ExprPtr or_expr() {
      ExprPtr e = and_expr();
      while (is_name("or")) ++p, e = make(Expr::Binary, "or", {e, and_expr()});
      return e;
    }
    ExprPtr and_expr() {
      ExprPtr e = not_expr();
      while (is_name("and")) ++p, e = make(Expr::Binary, "and", {e, not_expr()});
      return e;
    }
    ExprPtr not_expr() {
      if (is_name("not")) {
        ++p;
        return make(Expr::Unary, "not", {not_expr()});
      }
      return compare();
    }
    ExprPtr compare() {
      ExprPtr e = concat();
      for (;;) {
        std::string op;
        if (peek().kind == Tok::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" || peek().text == "<=" || peek().text == ">="))
          op = t[p++].text;
        else if (is_name("in")) ++p, op = "in";
        else if (is_name("not") && is_name("in", 1)) p += 2, op = "not in";
        else return e;
        e = make(Expr::Binary, op, {e, concat()});
      }
    }
    ExprPtr concat() {
      ExprPtr e = math1();
      while (is_op("~")) ++p, e = make(Expr::Binary, "~", {e, math1()});
      return e;
    }
    ExprPtr math1() {
      ExprPtr e = math2();
      while (is_op("+") || is_op("-")) {
        const std::string op = t[p++].text;
        e = make(Expr::Binary, op, {e, math2()});
      }
      return e;
    }
    ExprPtr math2() {
      ExprPtr e = unary();
      while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
        const std::string op = t[p++].text;
        e = make(Expr::Binary, op, {e, unary()});
      }
      return e;
    }
    ExprPtr unary() {
      if (is_op("-") || is_op("+")) {
        const std::string op = t[p++].text;
        return make(Expr::Unary, op, {unary()});
      }
      return filters(postfix(primary()));
    }
    void call_args(Expr& e) {
      expect_op("(");
      while (!is_op(")")) {
        if (peek().kind == Tok::Name && is_op("=", 1)) {
          std::string k = t[p].text;
          p += 2;
          e.kwargs.emplace_back(k, expression());
        } else {
          e.args.push_back(expression());
        }
        if (!is_op(",")) break;
        ++p;
      }
      expect_op(")");
    }
    ExprPtr postfix(ExprPtr e) {
      for (;;) {
        if (is_op(".")) {
          ++p;
          e = make(Expr::Attr, expect_name(), {e});
        } else if (is_op("[")) {
          ++p;
          ExprPtr a, b, c;
          bool slice = false;
          if (!is_op(":")) a = expression();
          if (is_op(":")) {
            slice = true;
            ++p;
            if (!is_op(":") && !is_op("]")) b = expression();
            if (is_op(":")) {
              ++p;
              if (!is_op("]")) c = expression();
            }
          }
          expect_op("]");
          if (slice) {
            auto s = make(Expr::Slice, "", {e, a, b, c});
            e = s;
          } else {
            e = make(Expr::Index, "", {e, a});
          }
        } else if (is_op("(")) {
          auto c = make(Expr::Call, "", {e});
          call_args(*c);
          e = c;
        } else {
          return e;
        }
      }
    }
    ExprPtr filters(ExprPtr e) {
      for (;;) {
        if (is_op("|")) {
          ++p;
          auto f = make(Expr::Filter, expect_name(), {e});
          if (is_op("(")) call_args(*f);
          e = f;
        } else if (is_name("is")) {
          ++p;
          bool neg = false;
          if (is_name("not")) ++p, neg = true;
          std::string name = peek().kind == Tok::Op ? t[p++].text : expect_name();
          if (name == "none" || name == "None") name = "none";
          auto te = make(Expr::Test, name, {e});
          te->negated = neg;
          if (is_op("(")) call_args(*te);
          else if (peek().kind == Tok::Str || peek().kind == Tok::Int || peek().kind == Tok::Float || (peek().kind == Tok::Name && !is_name("and") && !is_name("or") && !is_name("else") && !is_name("if")))
            te->args.push_back(primary());
          e = te;
        } else {
          return e;
        }
      }
    }
    ExprPtr primary() {
      const Tok& k = peek();
      if (k.kind == Tok::Str) {
        ++p;
        std::string s = k.text;
        while (peek().kind == Tok::Str) s += t[p++].text;  // adjacent literals join
        auto e = make(Expr::Literal);
        e->literal = s;
        return e;
      }
      if (k.kind == Tok::Int || k.kind == Tok::Float) {
        ++p;
        auto e = make(Expr::Literal);
        std::string txt = replace_all(k.text, "_", "");
        e->literal = k.kind == Tok::Int ? json(std::stoll(txt)) : json(std::stod(txt));
        return e;
      }
      if (k.kind == Tok::Name) {
        ++p;
        auto e = make(Expr::Literal);
        if (k.text == "true" || k.text == "True") e->literal = true;
        else if (k.text == "false" || k.text == "False") e->literal = false;
        else if (k.text == "none" || k.text == "None") e->literal = nullptr;
        else return make(Expr::Var, k.text);
        return e;
      }
      if (is_op("(")) {
        ++p;
        ExprPtr e = expression();
        expect_op(")");
        return e;
      }
      if (is_op("[")) {
        ++p;
        auto l = make(Expr::List);
        while (!is_op("]")) {
          l->args.push_back(expression());
          if (!is_op(",")) break;
          ++p;
        }
        expect_op("]");
        return l;
      }
      if (is_op("{")) {
        ++p;
        auto d = make(Expr::Dict);
        while (!is_op("}")) {
          d->args.push_back(expression());
          expect_op(":");
          d->args.push_back(expression());
          if (!is_op(",")) break;
          ++p;
        }
        expect_op("}");
        return d;
      }
      impl.fail(line, "unexpected '" + k.text + "' in an expression");
    }
  };

  ExprPtr parse_expr(const std::string& s, int line) const {
    Parser ps{*this, tokenize(s, line), 0, line};
    ExprPtr e = ps.expression();
    if (ps.peek().kind != Tok::End) fail(line, "unexpected '" + ps.peek().text + "' after the expression");
    return e;
  }

  // ---- statements into a tree
  Body parse_body(const std::vector<Segment>& segs, size_t& i, const std::vector<std::string>& until, std::string& ended_by,
                  std::unique_ptr<Parser>& last) const {
    Body body;
    while (i < segs.size()) {
      const Segment& s = segs[i];
      if (s.kind == Segment::Text) {
        auto n = std::make_shared<Node>(Node::Text);
        n->text = s.text;
        body.push_back(n);
        ++i;
        continue;
      }
      if (s.kind == Segment::Expr) {
        auto n = std::make_shared<Node>(Node::Output);
        n->expr = parse_expr(s.text, s.line);
        n->line = s.line;
        body.push_back(n);
        ++i;
        continue;
      }
      auto own = std::make_unique<Parser>(Parser{*this, tokenize(s.text, s.line), 0, s.line});
      Parser* ps = own.get();
      const std::string kw = ps->peek().kind == Tok::Name ? ps->t[ps->p++].text : "";
      if (std::find(until.begin(), until.end(), kw) != until.end()) {
        ended_by = kw;
        last = std::move(own);
        ++i;
        return body;
      }
      ++i;
      auto done = [&] {
        if (ps->peek().kind != Tok::End) fail(s.line, "unexpected '" + ps->peek().text + "' in {% " + kw + " %}");
      };
      if (kw == "if") {
        auto n = std::make_shared<Node>(Node::If);
        n->line = s.line;
        ExprPtr cond = ps->expression();
        done();
        for (;;) {
          std::string end;
          std::unique_ptr<Parser> next;
          Body b = parse_body(segs, i, {"elif", "else", "endif"}, end, next);
          if (end.empty()) fail(s.line, "{% if %} without {% endif %}");
          n->branches.emplace_back(cond, std::move(b));
          if (end == "elif") {
            cond = next->expression();
            if (next->peek().kind != Tok::End) fail(next->line, "unexpected '" + next->peek().text + "' in {% elif %}");
            continue;
          }
          if (end == "else") {
            std::string end2;
            std::unique_ptr<Parser> next2;
            n->else_body = parse_body(segs, i, {"endif"}, end2, next2);
            if (end2.empty()) fail(s.line, "{% if %} without {% endif %}");
          }
          break;
        }
        body.push_back(n);
      } else if (kw == "for") {
        auto n = std::make_shared<Node>(Node::For);
        n->line = s.line;
        n->targets.push_back(ps->expect_name());
        while (ps->is_op(",")) ++ps->p, n->targets.push_back(ps->expect_name());
        if (!ps->is_name("in")) fail(s.line, "expected 'in' in {% for %}");
        ++ps->p;
        n->expr = ps->or_expr();  // the iterable (a trailing "if" is the loop filter)
        if (ps->is_name("if")) {
          ++ps->p;
          n->filter = ps->expression();
        }
        done();
        std::string end;
        std::unique_ptr<Parser> next;
        n->body = parse_body(segs, i, {"else", "endfor"}, end, next);
        if (end.empty()) fail(s.line, "{% for %} without {% endfor %}");
        if (end == "else") {
          n->else_body = parse_body(segs, i, {"endfor"}, end, next);
          if (end.empty()) fail(s.line, "{% for %} without {% endfor %}");
        }
        body.push_back(n);
      } else if (kw == "set") {
        auto n = std::make_shared<Node>(Node::Set);
        n->line = s.line;
        n->targets.push_back(ps->expect_name());
        if (ps->is_op(".")) ++ps->p, n->targets.push_back(ps->expect_name());
        if (!ps->is_op("=")) fail(s.line, "block {% set %} is not supported (use {% set x = ... %})");
        ++ps->p;
        n->expr = ps->expression();
        done();
        body.push_back(n);
      } else if (kw == "macro") {
        auto n = std::make_shared<Node>(Node::Macro);
        n->line = s.line;
        n->targets.push_back(ps->expect_name());
        ps->expect_op("(");
        while (!ps->is_op(")")) {
          n->targets.push_back(ps->expect_name());
          ExprPtr d;
          if (ps->is_op("=")) ++ps->p, d = ps->expression();
          n->defaults.push_back(d);
          if (!ps->is_op(",")) break;
          ++ps->p;
        }
        ps->expect_op(")");
        done();
        std::string end;
        std::unique_ptr<Parser> next;
        n->body = parse_body(segs, i, {"endmacro"}, end, next);
        if (end.empty()) fail(s.line, "{% macro %} without {% endmacro %}");
        n->macro_index = macros.size();
        macros.push_back(n.get());
        body.push_back(n);
      } else if (kw == "break" || kw == "continue") {
        done();
        body.push_back(std::make_shared<Node>(kw == "break" ? Node::Break : Node::Continue));
      } else if (kw == "generation" || kw == "endgeneration") {
        // transformers' marker of assistant text (return_assistant_tokens_mask): renders its content unchanged
      } else {
        fail(s.line, "unsupported tag {% " + kw + " %}" + (kw.rfind("end", 0) == 0 || kw == "else" || kw == "elif" ? " (no open block for it)" : ""));
      }
    }
    return body;
  }

  // ---- evaluation
  struct Scope {
    std::vector<std::map<std::string, json>> frames;
    const json* context;
    json* find(const std::string& n) {
      for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
        auto it = f->find(n);
        if (it != f->end()) return &it->second;
      }
      return nullptr;
    }
  };
  struct LoopSignal {
    bool brk = false, cont = false;
  };

  Value lookup(Scope& sc, const std::string& n) const {
    if (json* v = sc.find(n)) return {*v, false};
    if (sc.context->contains(n)) return {(*sc.context)[n], false};
    for (const char* f : kFunctions)
      if (n == f) return {json{{kFunctionKey, n}}, false};
    return Value::undefined();
  }

  // A macro call: the parameters bound from the arguments (positional, then by keyword, then the
  // defaults, evaluated in order so that one may name an earlier parameter; the rest undefined) in a
  // frame of their own above the frames the macro was defined in (as Jinja2 resolves names: the
  // caller's loop variables are not visible); returns what the body renders.
  Value call_macro(const json& marker, const std::string& what, const Expr& call, Scope& sc, int line) const {
    const size_t index = marker[kMacroKey].get<size_t>(), depth = marker["depth"].get<size_t>();
    if (index >= macros.size() || depth > sc.frames.size()) fail(line, "'" + what + "' is not a macro of this template");
    const Node& m = *macros[index];
    const size_t params = m.targets.size() - 1;
    if (call.args.size() - 1 > params)
      fail(line, "macro '" + m.targets[0] + "' takes not more than " + std::to_string(params) + " argument(s)");
    std::map<std::string, json> frame;
    std::vector<bool> bound(params, false);
    for (size_t i = 1; i < call.args.size(); ++i) {
      const Value v = eval(*call.args[i], sc, line);
      if (!v.undef) frame[m.targets[i]] = v.j;
      bound[i - 1] = true;
    }
    for (const auto& [k, x] : call.kwargs) {
      const auto it = std::find(m.targets.begin() + 1, m.targets.end(), k);
      if (it == m.targets.end()) fail(line, "macro '" + m.targets[0] + "' takes no keyword argument '" + k + "'");
      const Value v = eval(*x, sc, line);
      if (!v.undef) frame[k] = v.j;
      bound[static_cast<size_t>(it - m.targets.begin()) - 1] = true;
    }
    std::vector<std::map<std::string, json>> hidden(std::make_move_iterator(sc.frames.begin() + static_cast<std::ptrdiff_t>(depth)),
                                                    std::make_move_iterator(sc.frames.end()));
    sc.frames.resize(depth);
    sc.frames.push_back(std::move(frame));
    for (size_t i = 0; i < params; ++i)
      if (!bound[i] && m.defaults[i]) {
        const Value v = eval(*m.defaults[i], sc, m.line);
        if (!v.undef) sc.frames.back()[m.targets[i + 1]] = v.j;
      }
    std::string out;
    exec(m.body, sc, out, nullptr);
    sc.frames.pop_back();
    for (auto& f : hidden) sc.frames.push_back(std::move(f));
    return {out, false};
  }

  // transformers' strftime_now(format): the local time now, formatted as Python's strftime (the C library's).
  static std::string strftime_now(const std::string& format) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    std::string buf(256 + 4 * format.size(), '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    buf.resize(n);
    return buf;
  }

  Value item(const Value& obj, const Value& key, int line, const std::string& what) const {
    if (obj.undef) fail(line, "'" + what + "' is undefined");
    const json& o = obj.j;
    if (o.is_object()) {
      if (!key.j.is_string()) return Value::undefined();
      auto it = o.find(key.j.get<std::string>());
      return it == o.end() ? Value::undefined() : Value{*it, false};
    }
    if ((o.is_array() || o.is_string()) && key.j.is_number_integer()) {
      const std::vector<std::string> cps = o.is_string() ? code_points(o.get<std::string>()) : std::vector<std::string>();
      const int64_t n = o.is_array() ? static_cast<int64_t>(o.size()) : static_cast<int64_t>(cps.size());
      int64_t i = key.j.get<int64_t>();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined();
      if (o.is_array()) return {o[static_cast<size_t>(i)], false};
      return {cps[static_cast<size_t>(i)], false};
    }
    return Value::undefined();
  }

  static int64_t to_int(const Value& v) {
    if (v.j.is_number()) return v.j.is_number_float() ? static_cast<int64_t>(v.j.get<double>()) : v.j.get<int64_t>();
    if (v.j.is_boolean()) return v.j.get<bool>();
    if (v.j.is_string()) {
      try {
        return std::stoll(v.j.get<std::string>());
      } catch (...) {
        return 0;
      }
    }
    return 0;
  }

  json slice(const json& o, const Value& a, const Value& b, const Value& c, int line) const {
    const bool str = o.is_string();
    if (!str && !o.is_array()) fail(line, "can only slice lists and strings");
    const std::vector<std::string> cps = str ? code_points(o.get<std::string>()) : std::vector<std::string>();
    const int64_t n = str ? static_cast<int64_t>(cps.size()) : static_cast<int64_t>(o.size());
    const int64_t step = c.undef || c.j.is_null() ? 1 : to_int(c);
    if (step == 0) fail(line, "slice step cannot be zero");
    auto norm = [&](const Value& v, int64_t dflt) {
      if (v.undef || v.j.is_null()) return dflt;
      int64_t i = to_int(v);
      if (i < 0) i += n;
      return step > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t start = norm(a, step > 0 ? 0 : n - 1), stop = norm(b, step > 0 ? n : -1);
    json out = str ? json("") : json::array();
    std::string s;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (str) s += cps[static_cast<size_t>(i)];
      else out.push_back(o[static_cast<size_t>(i)]);
    }
    return str ? json(s) : out;
  }

  static bool numeric(const json& j) { return j.is_number() || j.is_boolean(); }
  static double as_double(const json& j) { return j.is_boolean() ? (j.get<bool>() ? 1 : 0) : j.get<double>(); }
  static bool integral(const json& j) { return j.is_number_integer() || j.is_number_unsigned() || j.is_boolean(); }

  bool equal(const Value& a, const Value& b) const {
    if (a.undef || b.undef) return a.undef && b.undef;
    if (numeric(a.j) && numeric(b.j)) return as_double(a.j) == as_double(b.j);
    return a.j == b.j;
  }

  bool contains(const Value& hay, const Value& needle, int line) const {
    if (hay.j.is_string()) {
      if (!needle.j.is_string()) fail(line, "'in <string>' requires a string on the left");
      return hay.j.get<std::string>().find(needle.j.get<std::string>()) != std::string::npos;
    }
    if (hay.j.is_array()) {
      for (const auto& x : hay.j)
        if (equal({x, false}, needle)) return true;
      return false;
    }
    if (hay.j.is_object()) return needle.j.is_string() && hay.j.contains(needle.j.get<std::string>());
    if (hay.undef) fail(line, "'in' of an undefined value");
    fail(line, "'in' needs a string, list or mapping on the right");
  }

  Value binary(const std::string& op, const Value& a, const Value& b, int line) const {
    if (op == "~") return {py_str(a) + py_str(b), false};
    if (op == "==") return {equal(a, b), false};
    if (op == "!=") return {!equal(a, b), false};
    if (op == "in") return {contains(b, a, line), false};
    if (op == "not in") return {!contains(b, a, line), false};
    if (a.undef || b.undef) fail(line, "operator '" + op + "' on an undefined value");
    const json &x = a.j, &y = b.j;
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int cmp;
      if (numeric(x) && numeric(y)) cmp = as_double(x) < as_double(y) ? -1 : as_double(x) > as_double(y) ? 1 : 0;
      else if (x.is_string() && y.is_string()) cmp = x.get<std::string>().compare(y.get<std::string>());
      else fail(line, "'" + op + "' between " + x.type_name() + " and " + y.type_name());
      return {op == "<" ? cmp < 0 : op == ">" ? cmp > 0 : op == "<=" ? cmp <= 0 : cmp >= 0, false};
    }
    if (op == "+") {
      if (x.is_string() && y.is_string()) return {x.get<std::string>() + y.get<std::string>(), false};
      if (x.is_array() && y.is_array()) {
        json r = x;
        for (const auto& e : y) r.push_back(e);
        return {r, false};
      }
    }
    if (op == "*" && x.is_string() && integral(y)) {
      std::string r;
      for (int64_t i = 0; i < to_int(b); ++i) r += x.get<std::string>();
      return {r, false};
    }
    if (!numeric(x) || !numeric(y)) fail(line, "unsupported operand types for " + op + ": " + x.type_name() + " and " + y.type_name());
    const bool ints = integral(x) && integral(y);
    const double dx = as_double(x), dy = as_double(y);
    if (op == "+") return ints ? Value{to_int(a) + to_int(b), false} : Value{dx + dy, false};
    if (op == "-") return ints ? Value{to_int(a) - to_int(b), false} : Value{dx - dy, false};
    if (op == "*") return ints ? Value{to_int(a) * to_int(b), false} : Value{dx * dy, false};
    if (dy == 0) fail(line, "division by zero");
    if (op == "/") return {dx / dy, false};
    if (op == "//") return ints ? Value{static_cast<int64_t>(std::floor(dx / dy)), false} : Value{std::floor(dx / dy), false};
    if (op == "%") {
      if (ints) {
        int64_t m = to_int(a) % to_int(b);
        if (m != 0 && ((m < 0) != (to_int(b) < 0))) m += to_int(b);
        return {m, false};
      }
      return {dx - std::floor(dx / dy) * dy, false};
    }
    fail(line, "unknown operator " + op);
  }

  Value call_method(const Value& obj, const std::string& m, const std::vector<Value>& args, int line) const {
    auto arg_str = [&](size_t i) -> std::string {
      if (i >= args.size() || !args[i].j.is_string()) fail(line, "." + m + "() needs a string argument");
      return args[i].j.get<std::string>();
    };
    if (obj.j.is_string()) {
      const std::string s = obj.j.get<std::string>();
      const std::string chars = !args.empty() && args[0].j.is_string() ? args[0].j.get<std::string>() : "";
      if (m == "strip") return {strip_chars(s, true, true, chars), false};
      if (m == "lstrip") return {strip_chars(s, true, false, chars), false};
      if (m == "rstrip") return {strip_chars(s, false, true, chars), false};
      if (m == "upper") return {upper(s), false};
      if (m == "lower") return {lower(s), false};
      if (m == "title") return {title(s), false};
      if (m == "capitalize") return {capitalize(s), false};
      if (m == "startswith") return {s.rfind(arg_str(0), 0) == 0, false};
      if (m == "endswith") {
        const std::string x = arg_str(0);
        return {s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0, false};
      }
      if (m == "replace") return {replace_all(s, arg_str(0), arg_str(1)), false};
      if (m == "find") {
        const size_t at = s.find(arg_str(0));
        return {at == std::string::npos ? int64_t(-1) : static_cast<int64_t>(at), false};
      }
      if (m == "split") {
        json parts = json::array();
        if (args.empty() || args[0].j.is_null()) {
          size_t i = 0;
          while (i < s.size()) {
            while (i < s.size() && is_space(s[i])) ++i;
            size_t j = i;
            while (j < s.size() && !is_space(s[j])) ++j;
            if (j > i) parts.push_back(s.substr(i, j - i));
            i = j;
          }
        } else {
          const std::string sep = arg_str(0);
          if (sep.empty()) fail(line, "empty separator");
          size_t i = 0, at;
          while ((at = s.find(sep, i)) != std::string::npos) parts.push_back(s.substr(i, at - i)), i = at + sep.size();
          parts.push_back(s.substr(i));
        }
        return {parts, false};
      }
    }
    if (obj.j.is_object()) {
      if (m == "items") {
        json r = json::array();
        for (auto it = obj.j.begin(); it != obj.j.end(); ++it) r.push_back(json::array({it.key(), it.value()}));
        return {r, false};
      }
      if (m == "keys") {
        json r = json::array();
        for (auto it = obj.j.begin(); it != obj.j.end(); ++it) r.push_back(it.key());
        return {r, false};
      }
      if (m == "values") {
        json r = json::array();
        for (auto it = obj.j.begin(); it != obj.j.end(); ++it) r.push_back(it.value());
        return {r, false};
      }
      if (m == "get") {
        const Value v = item(obj, args.empty() ? Value::undefined() : args[0], line, "get");
        return v.undef ? (args.size() > 1 ? args[1] : Value{nullptr, false}) : v;
      }
    }
    fail(line, std::string(obj.undef ? "undefined" : obj.j.type_name()) + " has no method ." + m + "()");
  }

  Value filter(const std::string& f, const Value& v, const std::vector<Value>& args, const std::map<std::string, Value>& kw, int line) const {
    const json& j = v.j;
    if (f == "default" || f == "d") {
      const bool boolean = (args.size() > 1 && truthy(args[1])) || (kw.count("boolean") && truthy(kw.at("boolean")));
      if (v.undef || (boolean && !truthy(v))) return args.empty() ? Value{"", false} : args[0];
      return v;
    }
    if (v.undef && f != "string") fail(line, "filter '" + f + "' of an undefined value");
    if (f == "trim") return {strip_chars(py_str(v), true, true, !args.empty() && args[0].j.is_string() ? args[0].j.get<std::string>() : ""), false};
    if (f == "length" || f == "count") {
      if (j.is_string()) return {static_cast<int64_t>(utf8_length(j.get<std::string>())), false};
      if (j.is_array() || j.is_object()) return {static_cast<int64_t>(j.size()), false};
      fail(line, std::string("object of type ") + j.type_name() + " has no length");
    }
    if (f == "upper") return {upper(py_str(v)), false};
    if (f == "lower") return {lower(py_str(v)), false};
    if (f == "title") return {title(py_str(v)), false};
    if (f == "capitalize") return {capitalize(py_str(v)), false};
    if (f == "string") return {py_str(v), false};
    if (f == "int") return {to_int(v), false};
    if (f == "float") return {j.is_number() ? j.get<double>() : j.is_string() ? std::atof(j.get<std::string>().c_str()) : 0.0, false};
    if (f == "abs") return j.is_number_float() ? Value{std::fabs(j.get<double>()), false} : Value{std::llabs(to_int(v)), false};
    if (f == "round") {
      const int64_t digits = args.empty() ? 0 : to_int(args[0]);
      const double scale = std::pow(10.0, static_cast<double>(digits));
      return {std::nearbyint(as_double(j) * scale) / scale, false};
    }
    if (f == "first" || f == "last") {
      if (j.is_array()) return j.empty() ? Value::undefined() : Value{f == "first" ? j.front() : j.back(), false};
      if (j.is_string()) {
        const auto cps = code_points(j.get<std::string>());
        return cps.empty() ? Value::undefined() : Value{f == "first" ? cps.front() : cps.back(), false};
      }
    }
    if (f == "join") {
      const std::string sep = args.empty() ? "" : py_str(args[0]);
      std::string out;
      for (size_t i = 0; i < j.size(); ++i) out += (i ? sep : "") + py_str({j[i], false});
      return {out, false};
    }
    if (f == "tojson") return {py_json(j), false};
    if (f == "list") {
      if (j.is_array()) return v;
      json r = json::array();
      if (j.is_string())
        for (auto& c : code_points(j.get<std::string>())) r.push_back(c);
      else if (j.is_object())
        for (auto it = j.begin(); it != j.end(); ++it) r.push_back(it.key());
      return {r, false};
    }
    if (f == "reverse") {
      if (j.is_string()) {
        auto cps = code_points(j.get<std::string>());
        std::string s;
        for (auto c = cps.rbegin(); c != cps.rend(); ++c) s += *c;
        return {s, false};
      }
      json r = json::array();
      for (auto it = j.rbegin(); it != j.rend(); ++it) r.push_back(*it);
      return {r, false};
    }
    if (f == "items") return call_method(v, "items", {}, line);
    if (f == "replace") {
      if (args.size() < 2) fail(line, "replace needs two arguments");
      return {replace_all(py_str(v), py_str(args[0]), py_str(args[1])), false};
    }
    fail(line, "unsupported filter '" + f + "'");
  }

  bool test(const std::string& t, const Value& v, const std::vector<Value>& args, int line) const {
    const json& j = v.j;
    if (t == "defined") return !v.undef;
    if (t == "callable") return !v.undef && is_callable(j);
    if (t == "undefined") return v.undef;
    if (t == "none") return !v.undef && j.is_null();
    if (t == "string") return !v.undef && j.is_string();
    if (t == "number") return !v.undef && j.is_number();
    if (t == "integer") return !v.undef && (j.is_number_integer() || j.is_number_unsigned());
    if (t == "float") return !v.undef && j.is_number_float();
    if (t == "boolean") return !v.undef && j.is_boolean();
    if (t == "mapping") return !v.undef && j.is_object();
    if (t == "iterable") return !v.undef && (j.is_array() || j.is_object() || j.is_string());
    if (t == "sequence") return !v.undef && (j.is_array() || j.is_string() || j.is_object());
    if (t == "true") return !v.undef && j.is_boolean() && j.get<bool>();
    if (t == "false") return !v.undef && j.is_boolean() && !j.get<bool>();
    if (t == "even" || t == "odd") return (to_int(v) % 2 == 0) == (t == "even");
    if (args.empty()) fail(line, "unsupported test '" + t + "'");
    if (t == "eq" || t == "==" || t == "equalto" || t == "sameas") return equal(v, args[0]);
    if (t == "ne" || t == "!=") return !equal(v, args[0]);
    if (t == "lt" || t == "<" || t == "gt" || t == ">" || t == "le" || t == "<=" || t == "ge" || t == ">=") {
      const std::string op = t == "lt" ? "<" : t == "gt" ? ">" : t == "le" ? "<=" : t == "ge" ? ">=" : t;
      return truthy(binary(op, v, args[0], line));
    }
    if (t == "in") return contains(args[0], v, line);
    fail(line, "unsupported test '" + t + "'");
  }

  static std::string describe(const Expr& e) {
    if (e.kind == Expr::Var) return e.name;
    if (e.kind == Expr::Attr) return describe(*e.args[0]) + "." + e.name;
    if (e.kind == Expr::Index) return describe(*e.args[0]) + "[...]";
    return "value";
  }

  Value eval(const Expr& e, Scope& sc, int line) const {
    switch (e.kind) {
      case Expr::Literal: return {e.literal, false};
      case Expr::Var: return lookup(sc, e.name);
      case Expr::Attr: return item(eval(*e.args[0], sc, line), {e.name, false}, line, describe(*e.args[0]));
      case Expr::Index: return item(eval(*e.args[0], sc, line), eval(*e.args[1], sc, line), line, describe(*e.args[0]));
      case Expr::Slice: {
        const Value o = eval(*e.args[0], sc, line);
        if (o.undef) fail(line, "'" + describe(*e.args[0]) + "' is undefined");
        auto opt = [&](size_t i) { return e.args[i] ? eval(*e.args[i], sc, line) : Value::undefined(); };
        return {slice(o.j, opt(1), opt(2), opt(3), line), false};
      }
      case Expr::List: {
        json r = json::array();
        for (const auto& a : e.args) r.push_back(eval(*a, sc, line).j);
        return {r, false};
      }
      case Expr::Dict: {
        json r = json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) r[py_str(eval(*e.args[i], sc, line))] = eval(*e.args[i + 1], sc, line).j;
        return {r, false};
      }
      case Expr::Unary: {
        const Value v = eval(*e.args[0], sc, line);
        if (e.name == "not") return {!truthy(v), false};
        if (!numeric(v.j)) fail(line, "unary " + e.name + " of a non-number");
        if (e.name == "+") return v;
        return integral(v.j) ? Value{-to_int(v), false} : Value{-v.j.get<double>(), false};
      }
      case Expr::Binary: {
        if (e.name == "and") {
          const Value a = eval(*e.args[0], sc, line);
          return truthy(a) ? eval(*e.args[1], sc, line) : a;
        }
        if (e.name == "or") {
          const Value a = eval(*e.args[0], sc, line);
          return truthy(a) ? a : eval(*e.args[1], sc, line);
        }
        return binary(e.name, eval(*e.args[0], sc, line), eval(*e.args[1], sc, line), line);
      }
      case Expr::Cond:
        if (truthy(eval(*e.args[1], sc, line))) return eval(*e.args[0], sc, line);
        return e.args.size() > 2 ? eval(*e.args[2], sc, line) : Value::undefined();
      case Expr::Filter:
      case Expr::Test: {
        const Value v = eval(*e.args[0], sc, line);
        std::vector<Value> args;
        for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i], sc, line));
        std::map<std::string, Value> kw;
        for (const auto& [k, x] : e.kwargs) kw[k] = eval(*x, sc, line);
        if (e.kind == Expr::Filter) return filter(e.name, v, args, kw, line);
        return {test(e.name, v, args, line) != e.negated, false};
      }
      case Expr::Call: {
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::Var)
          if (const json* v = sc.find(callee.name); v && v->is_object() && v->contains(kMacroKey)) return call_macro(*v, callee.name, e, sc, line);
        std::vector<Value> args;
        for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i], sc, line));
        if (callee.kind == Expr::Attr) return call_method(eval(*callee.args[0], sc, line), callee.name, args, line);
        if (callee.kind == Expr::Var && !sc.find(callee.name) && !sc.context->contains(callee.name)) {
          if (callee.name == "raise_exception") throw Error(name, "raise_exception", args.empty() ? "raised" : py_str(args[0]));
          if (callee.name == "namespace") {
            json ns = json::object();
            for (const auto& [k, x] : e.kwargs) ns[k] = eval(*x, sc, line).j;
            return {ns, false};
          }
          if (callee.name == "strftime_now") {
            if (args.size() != 1 || !args[0].j.is_string()) fail(line, "strftime_now() needs one format string");
            return {strftime_now(args[0].j.get<std::string>()), false};
          }
          if (callee.name == "range") {
            int64_t a = 0, b = 0, step = 1;
            if (args.size() == 1) b = to_int(args[0]);
            else if (args.size() >= 2) a = to_int(args[0]), b = to_int(args[1]);
            if (args.size() == 3) step = to_int(args[2]);
            if (step == 0) fail(line, "range() step cannot be zero");
            json r = json::array();
            for (int64_t i = a; step > 0 ? i < b : i > b; i += step) r.push_back(i);
            return {r, false};
          }
        }
        fail(line, "'" + describe(callee) + "' is not a function kotsu's templates know");
      }
    }
    fail(line, "bad expression");
  }

  void exec(const Body& body, Scope& sc, std::string& out, LoopSignal* loop) const {
    for (const auto& n : body) {
      if (loop && (loop->brk || loop->cont)) return;
      switch (n->kind) {
        case Node::Text: out += n->text; break;
        case Node::Output: out += py_str(eval(*n->expr, sc, n->line)); break;
        case Node::If: {
          bool done = false;
          for (const auto& [cond, b] : n->branches)
            if (truthy(eval(*cond, sc, n->line))) {
              exec(b, sc, out, loop);
              done = true;
              break;
            }
          if (!done) exec(n->else_body, sc, out, loop);
          break;
        }
        case Node::Set: {
          const Value v = eval(*n->expr, sc, n->line);
          if (n->targets.size() == 1) {
            sc.frames.back()[n->targets[0]] = v.j;
          } else {
            json* ns = sc.find(n->targets[0]);
            if (!ns || !ns->is_object()) fail(n->line, "'" + n->targets[0] + "' is not a namespace");
            (*ns)[n->targets[1]] = v.j;
          }
          break;
        }
        case Node::Macro:
          sc.frames.back()[n->targets[0]] = json{{kMacroKey, n->macro_index},
                                                 {"depth", sc.frames.size()}, {"name", n->targets[0]}};
          break;
        case Node::Break:
        case Node::Continue:
          if (!loop) fail(n->line, "break or continue outside a loop");
          (n->kind == Node::Break ? loop->brk : loop->cont) = true;
          return;
        case Node::For: {
          const Value it = eval(*n->expr, sc, n->line);
          json items = json::array();
          if (it.j.is_array()) items = it.j;
          else if (it.j.is_object())
            for (auto k = it.j.begin(); k != it.j.end(); ++k) items.push_back(k.key());
          else if (it.j.is_string())
            for (auto& c : code_points(it.j.get<std::string>())) items.push_back(c);
          else if (!it.undef && !it.j.is_null()) fail(n->line, std::string("cannot loop over ") + it.j.type_name());
          auto bind = [&](std::map<std::string, json>& frame, const json& x) {
            if (n->targets.size() == 1) {
              frame[n->targets[0]] = x;
              return;
            }
            if (!x.is_array() || x.size() != n->targets.size()) fail(n->line, "cannot unpack the loop item into " + std::to_string(n->targets.size()) + " names");
            for (size_t k = 0; k < n->targets.size(); ++k) frame[n->targets[k]] = x[k];
          };
          if (n->filter) {
            json kept = json::array();
            for (const auto& x : items) {
              sc.frames.emplace_back();
              bind(sc.frames.back(), x);
              if (truthy(eval(*n->filter, sc, n->line))) kept.push_back(x);
              sc.frames.pop_back();
            }
            items = kept;
          }
          if (items.empty()) {
            exec(n->else_body, sc, out, loop);
            break;
          }
          const int64_t len = static_cast<int64_t>(items.size());
          for (int64_t i = 0; i < len; ++i) {
            sc.frames.emplace_back();
            bind(sc.frames.back(), items[static_cast<size_t>(i)]);
            sc.frames.back()["loop"] = {{"index", i + 1}, {"index0", i}, {"revindex", len - i}, {"revindex0", len - i - 1},
                                        {"first", i == 0}, {"last", i == len - 1}, {"length", len},
                                        {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : json()},
                                        {"nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : json()}};
            LoopSignal sig;
            exec(n->body, sc, out, &sig);
            sc.frames.pop_back();
            if (sig.brk) break;
          }
          break;
        }
      }
    }
  }
};

JinjaTemplate::JinjaTemplate(const std::string& source, const std::string& name) : impl_(std::make_unique<Impl>()) {
  impl_->name = name;
  const std::vector<Segment> segs = impl_->segments(source);
  size_t i = 0;
  std::string ended;
  std::unique_ptr<Impl::Parser> last;
  impl_->root = impl_->parse_body(segs, i, {}, ended, last);
}

JinjaTemplate::~JinjaTemplate() = default;
JinjaTemplate::JinjaTemplate(JinjaTemplate&&) noexcept = default;
JinjaTemplate& JinjaTemplate::operator=(JinjaTemplate&&) noexcept = default;

std::string JinjaTemplate::render(const json& context) const {
  Impl::Scope sc;
  sc.context = &context;
  sc.frames.emplace_back();
  std::string out;
  impl_->exec(impl_->root, sc, out, nullptr);
  return out;
}

}  // namespace kotsu
