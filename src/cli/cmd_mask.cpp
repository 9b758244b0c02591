// kotsu mask --data FILE --out FILE: a copy of a text dataset with personal data replaced by typed
// placeholders, and how many of each kind were found (never the items themselves).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/data/mask_file.hpp"
#include <nlohmann/json.hpp>

namespace kotsu::cli {

Action add_mask(CLI::App& app) {
  struct Flags {
    std::string data, out, types = "all";
    std::vector<std::string> cols{"text"};
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("mask", "mask personal data (e-mail, phone, card, IBAN, My Number, IP, URL, postal code) in a text dataset");
  c->add_option("--data", f->data, "the dataset: .csv, .tsv or .jsonl")->required();
  c->add_option("--out", f->out, "where to write the masked copy")->required();
  c->add_option("--text-col", f->cols, "text column(s) to mask")->capture_default_str()->delimiter(',');
  c->add_option("--types", f->types, "kinds to mask: all, or a list of url,email,iban,credit_card,my_number,phone,ip,ipv4,ipv6,postal_code")
      ->capture_default_str();
  c->add_flag("--json", f->json, "print the counts as JSON");
  return [f]() {
    PiiMasker masker(parse_pii_kinds(f->types));
    MaskReport r = mask_file(f->data, f->out, f->cols, masker);
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    int64_t total = 0;
    for (size_t k = 0; k < kPiiKinds; ++k) {
      counts[pii_name(static_cast<PiiKind>(k))] = r.counts[k];
      total += r.counts[k];
    }
    if (f->json) {
      nlohmann::ordered_json j = {{"data", f->data}, {"out", f->out}, {"rows", r.rows}, {"rows_changed", r.rows_changed},
                                  {"masked", total}, {"counts", counts}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("masked {} items in {} of {} rows; wrote {}\n", total, r.rows_changed, r.rows, f->out);
    for (auto& [k, v] : counts.items())
      if (v.get<int64_t>() > 0) fmt::print("  {:<12} {}\n", k, v.get<int64_t>());
    return 0;
  };
}

}  // namespace kotsu::cli
