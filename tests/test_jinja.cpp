// text/jinja: chat templates render byte for byte as Jinja2 renders them in transformers'
// apply_chat_template environment (fixtures/make_chat_templates.py, python3-jinja2).
#include <gtest/gtest.h>

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
      {"x\ny\n{% macro m() %}{% endmacro %}", "macro"},
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
