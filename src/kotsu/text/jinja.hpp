// kotsu/text/jinja: the subset of Jinja2 that Hugging Face chat templates (tokenizer_config.json's
// chat_template) are written in, rendered as transformers' apply_chat_template renders them (an
// environment with trim_blocks, lstrip_blocks and the loop-controls extension). Written by hand: no Debian
// C++ library implements Jinja2's syntax and semantics.
// Supported: text; {{ expr }}; {% if / elif / else / endif %}; {% for x in xs [if cond] %} (and "for a, b
// in ...") with {% else %}, loop.index/index0/revindex/revindex0/first/last/length, {% break %},
// {% continue %}; {% set x = expr %} and {% set ns.attr = expr %}; {% macro name(a, b=default) %} ...
// {% endmacro %} called as name(x, b=y) (recursion too; no {% call %}, caller(), varargs or kwargs);
// comments {# #}; whitespace control
// with "-" (and "+" to keep lstrip_blocks off); literals (strings, numbers, true/false/none and their
// Python spellings, lists, dicts); a.b, a['b'], a[i], slices a[i:j:k]; + - * / // % ~, comparisons, in,
// not in, and, or, not, x if c else y; filters trim, length/count, upper, lower, title, capitalize,
// first, last, default/d, string, int, float, join, tojson, reverse, list, items, replace, round, abs;
// tests defined, undefined, none, string, number, integer, float, boolean, mapping, iterable, sequence,
// true, false, even, odd, callable, eq/ne/lt/gt/le/ge; string methods strip/lstrip/rstrip/upper/lower/title/
// capitalize/startswith/endswith/split/replace/find/format-free; dict methods items/keys/values/get;
// globals raise_exception(msg), namespace(...), range(...) and transformers' strftime_now(format) (local
// time now).
// Values print as Python prints them (None, True, False, 1.0). Undefined names and missing keys are
// undefined: they print as "" and are false, and a further attribute of them is an error.
// Errors (syntax, unknown tag, filter or test, raise_exception) are kotsu::Error naming the template and
// the line.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

class JinjaTemplate {
 public:
  // `name` names the template in errors (a file, or "tokenizer_config.json: chat_template").
  JinjaTemplate(const std::string& source, const std::string& name);
  ~JinjaTemplate();
  JinjaTemplate(JinjaTemplate&&) noexcept;
  JinjaTemplate& operator=(JinjaTemplate&&) noexcept;
  // Renders with the variables of `context` (a JSON object).
  std::string render(const nlohmann::json& context) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kotsu
