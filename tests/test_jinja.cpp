// text/jinja: chat templates render byte for byte as Jinja2 renders them in transformers'
// apply_chat_template environment (fixtures/make_chat_templates.py, python3-jinja2).
#include <gtest/gtest.h>

#include <ctime>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/jinja.hpp"
#include "test_util.hpp"

using namespace kotsu;

TEST(Jinja, ChatTemplatesRenderAsJinja2Does) {
  const auto fx = read_json(test::fixture("chat_templates.json"));
  std::map<std::string, JinjaTemplate> compiled;
  for (const auto& [name, source] : fx["templates"].items()) compiled.emplace(name, JinjaTemplate(source.get<std::string>(), name));
  EXPECT_GE(compiled.size(), 7u);
  size_t rendered = 0, raised = 0;
  for (const auto& c : fx["cases"]) {
    const std::string name = c["template"];
    SCOPED_TRACE(name + " " + c["context"].dump());
    const JinjaTemplate& t = compiled.at(name);
    if (c.contains("error")) {
      try {
        t.render(c["context"]);
        ADD_FAILURE() << "Jinja2 raised '" << c["error"].get<std::string>() << "', kotsu rendered";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << e.what();
        ++raised;
      }
      continue;
    }
    EXPECT_EQ(t.render(c["context"]), c["expected"].get<std::string>());
    ++rendered;
  }
  EXPECT_GT(rendered, 40u);
  EXPECT_GT(raised, 0u);  // the alternation checks of the Llama-2 and Mistral styles
}

TEST(Jinja, SyntaxErrorsNameTheTemplateAndLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a\n{% if x %}b", "line 2"},            // no endif
      {"{{ x + }}", "line 1"},                 // no operand
      {"x\ny\n{% macro m() %}{% endmacro %}{% call m() %}{% endcall %}", "line 3"},  // no {% call %}
      {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", "takes not more than 1 argument(s)"},
      {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=1) }}", "takes no keyword argument 'b'"},
      {"{% macro m(a) %}{{ a }}", "without {% endmacro %}"},
      {"{{ 'open }}", "line 1"},
      {"{% for x in y %}{% endif %}", "endif"},
  };
  for (const auto& [src, expect] : bad) {
    try {
      JinjaTemplate t(src, "tpl.jinja");
      t.render({{"x", 1}, {"y", {1}}});
      ADD_FAILURE() << src;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("tpl.jinja"), std::string::npos) << what;
      EXPECT_NE(what.find(expect), std::string::npos) << src << ": " << what;
    }
  }
  // an attribute of an undefined value is an error, an undefined value alone prints nothing
  EXPECT_EQ(JinjaTemplate("[{{ nothing }}]", "t").render(nlohmann::json::object()), "[]");
  EXPECT_THROW(JinjaTemplate("{{ nothing.attr }}", "t").render(nlohmann::json::object()), Error);
}

// Macros resolve names where they were defined (Jinja2's answers, checked with python3-jinja2): the latest
// value of a top-level variable, the loop variable around a macro defined in the loop, but not the loop
// variable of a caller; strftime_now is transformers' global (local time now).
TEST(Jinja, MacrosSeeTheirDefinitionScopeAndStrftimeNowIsTheLocalTime) {
  auto render = [](const std::string& src, const nlohmann::json& ctx = nlohmann::json::object()) { return JinjaTemplate(src, "t").render(ctx); };
  EXPECT_EQ(render("{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}"), "2");
  EXPECT_EQ(render("{% for i in [1,2] %}{% macro m() %}{{ i }}{% endmacro %}{{ m() }}{% endfor %}"), "12");
  EXPECT_EQ(render("{% macro m() %}[{{ i }}]{% endmacro %}{% for i in [1,2] %}{{ m() }}{% endfor %}"), "[][]");
  EXPECT_EQ(render("{% macro m() %}[{{ i }}]{% endmacro %}{% for i in [1,2] %}{{ m() }}{% endfor %}", {{"i", 9}}), "[9][9]");
  EXPECT_EQ(render("{% set ns = namespace(v=1) %}{% macro m() %}{% set ns.v = 5 %}{% set q = 1 %}{% endmacro %}{{ m() }}{{ ns.v }}[{{ q }}]"), "5[]");
  EXPECT_EQ(render("{% macro m(a, b='d') %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }}|{{ m(1, 2) }}|{{ m(b=3, a=4) }}|{{ m() }}|{{ m }}"),
            "1-d|1-2|4-3|-d|<Macro 'm'>");
  EXPECT_EQ(render("{% set m = 3 %}{% macro m() %}x{% endmacro %}{{ m() }}"), "x");
  EXPECT_THROW(render("{{ m() }}{% macro m() %}x{% endmacro %}"), Error);  // not defined yet where it is called

  auto today = [] {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[64];
    return std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y|%Y-%m-%d", &tm));
  };
  const std::string before = today();
  const std::string got = render("{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}{% endif %}");
  const std::string after = today();
  EXPECT_TRUE(got == before || got == after) << got;
  EXPECT_EQ(got.size(), std::string("01 Dec 2026|2026-12-01").size()) << got;
}
