// kotsu: fine-tune, evaluate and use text classifiers. Errors print on one line and exit 1.
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "kotsu/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"kotsu: fine-tune pre-trained models on small datasets, evaluate them honestly, and use them"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kotsu 0.1.0");
  std::map<CLI::App*, kotsu::cli::Action> actions;
  auto reg = [&](kotsu::cli::Action (*add)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    auto action = add(app);
    actions[app.get_subcommands({})[before]] = action;
  };
  reg(kotsu::cli::add_train);
  reg(kotsu::cli::add_cv);
  reg(kotsu::cli::add_eval);
  reg(kotsu::cli::add_predict);
  reg(kotsu::cli::add_inspect);
  reg(kotsu::cli::add_tokenize);
  reg(kotsu::cli::add_import);
  reg(kotsu::cli::add_embed);
  reg(kotsu::cli::add_mask);
  reg(kotsu::cli::add_audit);
  reg(kotsu::cli::add_report);
  reg(kotsu::cli::add_tune);
  reg(kotsu::cli::add_generate);
  reg(kotsu::cli::add_perplexity);
  reg(kotsu::cli::add_export);
  reg(kotsu::cli::add_prompt);
  reg(kotsu::cli::add_serve);
  reg(kotsu::cli::add_drift);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const kotsu::Error& e) {
    std::fprintf(stderr, "kotsu: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    auto nl = msg.find('\n');
    std::fprintf(stderr, "kotsu: error: %s\n", msg.substr(0, nl).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kotsu: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
