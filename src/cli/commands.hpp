// kotsu CLI: one function per subcommand registering its flags; no logic beyond parsing and calling the library.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace kotsu::cli {

using Action = std::function<int()>;

Action add_train(CLI::App& app);
Action add_cv(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_predict(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_import(CLI::App& app);
Action add_embed(CLI::App& app);
Action add_mask(CLI::App& app);
Action add_audit(CLI::App& app);
Action add_report(CLI::App& app);
Action add_tune(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_perplexity(CLI::App& app);
Action add_export(CLI::App& app);
Action add_prompt(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_drift(CLI::App& app);

}  // namespace kotsu::cli
