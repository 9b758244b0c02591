// train/lm_trainer, data/lm_data, text/chat_format, data/instruction_data: instruction tuning of the tiny
// GPT-2 (fixtures/make_tiny_gpt2.py) with LoRA.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "kotsu/core/error.hpp"
#include "kotsu/data/lm_data.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/train/lm_trainer.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

const std::vector<std::pair<std::string, std::string>> kFacts = {
    {"sky?", " blue"}, {"grass?", " green"}, {"snow?", " white"}, {"coal?", " black"}, {"sun?", " yellow"}, {"rose?", " red"}};

std::string write_facts(const std::string& dir) {
  std::string text;
  for (const auto& [q, a] : kFacts) text += nlohmann::json({{"prompt", "colour of the " + q + " ->"}, {"completion", a}}).dump() + "\n";
  write_atomic(dir + "/facts.jsonl", text);
  return dir + "/facts.jsonl";
}

// The tiny GPT-2 without dropout (its config has 0.1 everywhere): exact comparisons between runs.
std::string no_dropout_gpt2(const std::string& dir) {
  const std::string m = dir + "/gpt2";
  std::filesystem::copy(test::fixture("tiny_gpt2"), m, std::filesystem::copy_options::recursive);
  auto c = read_json(m + "/config.json");
  for (const char* k : {"resid_pdrop", "embd_pdrop", "attn_pdrop"}) c[k] = 0.0;
  write_atomic(m + "/config.json", c.dump(2));
  return m;
}

TrainOptions lora_options(const std::string& dir, const std::string& data) {
  TrainOptions o;
  o.model = no_dropout_gpt2(dir);
  o.data = data;
  o.out = dir + "/run";
  o.strategy = "lora";
  o.lora_targets = "all-linear";
  o.lora_r = 8;
  o.lora_alpha = 16;
  o.lora_dropout = 0;
  o.lr = 1e-2;
  o.warmup_ratio = 0;
  o.batch_size = 6;
  o.epochs = 60;
  o.validation = false;
  o.seed = 1;
  o.threads = 2;
  return o;
}

}  // namespace

TEST(LmData, OnlyAnswerTokensAndTheirEosAreLearntEvenWhenPadIsEos) {
  const Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  ASSERT_EQ(tok.pad_id(), tok.eos_id()) << "the fixture's GPT-2 pads with EOS, the case other tools get wrong";
  std::vector<InstructionExample> data = {{"the cat", " sat", {}}, {"a long prompt here", " and a longer answer", {}}};
  const LmTokenized t = tokenize_instructions(data, tok, ChatFormat("", "", "", ""), 64, "test");
  ASSERT_EQ(t.examples.size(), 2u);
  const LmExample& e = t.examples[0];
  const auto prompt = tok.encode_ids("the cat");
  ASSERT_GT(e.ids.size(), prompt.size() + 1);
  for (size_t i = 0; i < prompt.size(); ++i) EXPECT_EQ(e.learn[i], 0) << i;
  for (size_t i = prompt.size(); i < e.ids.size(); ++i) EXPECT_EQ(e.learn[i], 1) << i;
  EXPECT_EQ(e.ids.back(), tok.eos_id());
  EXPECT_EQ(tok.decode(std::vector<int64_t>(e.ids.begin() + static_cast<std::ptrdiff_t>(prompt.size()), e.ids.end() - 1)), " sat");
  // batched with a longer row: the short row's EOS is a label once, its padding (also EOS) never
  const LmBatch b = make_lm_batch(t.examples, {0, 1}, tok.pad_id());
  EXPECT_EQ(b.targets, e.targets() + t.examples[1].targets());
  const auto labels = b.labels[0];
  int64_t eos_labels = 0, labelled = 0;
  for (int64_t i = 0; i < labels.size(0); ++i) {
    eos_labels += labels[i].item<int64_t>() == tok.eos_id();
    labelled += labels[i].item<int64_t>() != -100;
  }
  EXPECT_EQ(eos_labels, 1);
  EXPECT_EQ(labelled, e.targets());
  EXPECT_EQ(labels[static_cast<int64_t>(e.ids.size()) - 2].item<int64_t>(), tok.eos_id());  // predicted from the last answer token
  EXPECT_EQ(b.mask[0].sum().item<int64_t>(), static_cast<int64_t>(e.ids.size()));
}

TEST(LmData, PackedBatchesGiveEveryExampleItsOwnLogitsAndTheSameLoss) {
  const Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  std::vector<InstructionExample> data;
  for (const auto& [q, a] : kFacts) data.push_back({"colour of the " + q + " ->", a, {}});
  const LmTokenized t = tokenize_instructions(data, tok, ChatFormat("", "", "", ""), 64, "test");
  const std::vector<size_t> idx{0, 1, 2, 3, 4, 5};
  const LmBatch plain = make_lm_batch(t.examples, idx, tok.pad_id());
  const LmBatch packed = pack_lm_batch(t.examples, idx, tok.pad_id(), 64);
  EXPECT_LT(packed.ids.size(0), plain.ids.size(0));  // several examples share a row
  EXPECT_EQ(packed.targets, plain.targets);
  auto m = load_causal_lm(test::fixture("tiny_gpt2"), torch::kDouble);
  m.model->eval();
  torch::NoGradGuard ng;
  const auto lp = m.model->logits(plain.ids, nullptr, plain.mask), lk = m.model->logits(packed.ids, nullptr, packed.mask, packed.positions);
  // (the loss sums in float32: equal to its rounding; the logits below are compared in float64)
  EXPECT_NEAR(lm_loss_sum(lp, plain.labels).item<double>(), lm_loss_sum(lk, packed.labels).item<double>(), 1e-6 * lm_loss_sum(lp, plain.labels).item<double>());
  // example by example: its tokens' logits in the packed row equal its own row's
  int64_t row = 0, start = 0, longest = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    const int64_t n = static_cast<int64_t>(t.examples[i].ids.size());
    if (start + n > 64) ++row, start = 0;
    EXPECT_LT((lk[row].slice(0, start, start + n) - lp[static_cast<int64_t>(i)].slice(0, 0, n)).abs().max().item<double>(), 1e-9) << i;
    EXPECT_EQ(packed.positions[row][start].item<int64_t>(), 0);
    start += n;
    longest = std::max(longest, n);
  }
  // the same for a Llama-family model (rotary positions restart per example)
  auto q = load_causal_lm(test::fixture("tiny_qwen2"), torch::kDouble);
  q.model->eval();
  const auto qp = q.model->logits(plain.ids.remainder(q.config.vocab_size), nullptr, plain.mask);
  const auto qk = q.model->logits(packed.ids.remainder(q.config.vocab_size), nullptr, packed.mask, packed.positions);
  EXPECT_NEAR(lm_loss_sum(qp, plain.labels.remainder(q.config.vocab_size).masked_fill(plain.labels.eq(-100), -100)).item<double>(),
              lm_loss_sum(qk, packed.labels.remainder(q.config.vocab_size).masked_fill(packed.labels.eq(-100), -100)).item<double>(), 1e-3);
}

TEST(LmData, ChatFormatsLearnOnlyTheAssistantTurns) {
  InstructionExample chat;
  chat.messages = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}, {"assistant", " Bye now. "}};
  const RenderedExample r = ChatFormat("chatml", "", "<s>", "</s>").render(chat);
  EXPECT_EQ(r.text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
                    "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n Bye now. <|im_end|>\n");
  ASSERT_EQ(r.trained.size(), 2u);
  EXPECT_EQ(r.text.substr(r.trained[0].first, r.trained[0].second - r.trained[0].first), "Hello.<|im_end|>");
  EXPECT_EQ(r.text.substr(r.trained[1].first, r.trained[1].second - r.trained[1].first), " Bye now. <|im_end|>");
  EXPECT_FALSE(r.needs_eos);
  const RenderedExample l = ChatFormat("llama-3", "", "<s>", "</s>").render(chat);
  EXPECT_EQ(l.text.rfind("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>", 0), 0u) << l.text;
  EXPECT_EQ(l.text.substr(l.trained[1].first, l.trained[1].second - l.trained[1].first), "Bye now.<|eot_id|>");
  EXPECT_TRUE(l.has_bos);
  EXPECT_EQ(ChatFormat("chatml", "", "", "").generation_prompt({{"user", "Hi"}}), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THROW(ChatFormat("", "", "", "").render(chat), Error);  // chat rows need a format
  EXPECT_THROW(ChatFormat("vicuna", "", "", ""), Error);         // not a built-in, not a file
}

TEST(LmData, BadInstructionFilesNameTheLineAndField) {
  const std::string dir = test::temp_dir("lm-bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"prompt": "a"})", "completion"},
      {R"({"messages": [{"role": "user", "content": "hi"}]})", "no assistant"},
      {R"({"messages": [{"role": "robot", "content": "hi"}]})", "messages[0].role"},
      {R"({"text": "x"})", "neither"},
      {"{oops", "not JSON"}};
  for (const auto& [line, expect] : cases) {
    write_atomic(dir + "/bad.jsonl", R"({"prompt": "ok", "completion": " fine"})" "\n" + line + "\n");
    try {
      read_instruction_data(dir + "/bad.jsonl");
      FAIL() << line;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("bad.jsonl:2"), std::string::npos) << what;
      EXPECT_NE(what.find(expect), std::string::npos) << what;
    }
  }
}

TEST(LmTrain, LoraLearnsTheAnswersAndTheAdapterReloads) {
  const std::string dir = test::temp_dir("lm-lora");
  TrainOptions o = lora_options(dir, write_facts(dir));
  TrainHooks quiet;
  quiet.quiet = true;
  const TrainResult r = train_causal_lm(o, quiet);
  const double first = r.history.front()["train_loss"], last = r.history.back()["train_loss"];
  EXPECT_LT(last, 0.05 * first) << r.history.dump();
  // OUT is a PEFT adapter for the base model, with the tokenizer
  const auto cfg = read_json(o.out + "/adapter_config.json");
  EXPECT_EQ(cfg["base_model_name_or_path"], std::filesystem::absolute(o.model).string());
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_TRUE(std::filesystem::exists(o.out + "/adapter_model.safetensors"));
  const auto run = read_json(o.out + "/run.json");
  EXPECT_EQ(run["task"], "causal-lm");
  EXPECT_EQ(run["status"], "finished");
  EXPECT_LT(run["parameters"]["trainable"].get<int64_t>(), run["parameters"]["total"].get<int64_t>() / 2);
  // folded into the base weights: a plain Hugging Face directory with the adapted model's logits
  {
    int status = 0;
    const std::string out = test::run_command(std::string(KOTSU_CLI) + " export --merged --model " + o.out + " --out " + dir + "/merged", &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_FALSE(std::filesystem::exists(dir + "/merged/adapter_config.json"));
    auto merged = load_causal_lm(dir + "/merged");
    auto adapted = load_causal_lm_or_adapter(o.out);
    merged.model->eval();
    adapted.model->eval();
    torch::NoGradGuard ng;
    const auto ids = torch::randint(0, merged.config.vocab_size, {2, 12}, torch::kLong);
    const auto a = adapted.model->logits(ids), b = merged.model->logits(ids);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-5 * a.abs().max().item<double>());
    for (const auto& p : merged.model->named_parameters(true)) EXPECT_EQ(p.key().find("lora_"), std::string::npos);
    EXPECT_NE(test::run_command(std::string(KOTSU_CLI) + " export --merged --model " + o.out + " --out " + dir + "/merged", &status).find("--force"), std::string::npos);
  }
  // prompting it as a classifier (kotsu prompt eval): each fact's colour scores best after its prompt
  {
    std::string csv = "text,label\n";
    for (const auto& [q, a] : kFacts) csv += q + "," + a.substr(1) + "\n";
    write_atomic(dir + "/facts.csv", csv);
    int status = 0;
    const std::string out = test::run_command(std::string(KOTSU_CLI) + " prompt eval --model " + o.out + " --data " + dir +
                                                  "/facts.csv --template 'colour of the {text} ->' --template 'the {text}' --out " + dir +
                                                  "/prompt.json --threads 2",
                                              &status);
    ASSERT_EQ(status, 0) << out;
    const auto rep = read_json(dir + "/prompt.json");
    ASSERT_EQ(rep["results"].size(), 2u);
    EXPECT_DOUBLE_EQ(rep["results"][0]["accuracy"].get<double>(), 1.0) << out;
    EXPECT_NE(out.find("1.0000       0    1.0000  colour of the {text} ->"), std::string::npos) << out;
    // a score is the summed log-probability of the verbalizer's tokens after the prompt
    auto m = load_causal_lm_or_adapter(o.out);
    m.model->eval();
    const Tokenizer tok = Tokenizer::load(o.out);
    std::vector<int64_t> ids = tok.encode_ids("colour of the sky? ->");
    const size_t n_prompt = ids.size();
    for (int64_t t : tok.encode_ids(" blue")) ids.push_back(t);
    torch::NoGradGuard ng;
    const auto lp = torch::log_softmax(m.model->logits(torch::tensor(ids).unsqueeze(0)).squeeze(0), -1);
    double expect = 0;
    for (size_t t = n_prompt; t < ids.size(); ++t) expect += lp[static_cast<int64_t>(t - 1)][ids[t]].item<double>();
    const auto& first = rep["results"][0]["predictions"][0];
    ASSERT_EQ(first["label"], "blue");
    const auto labels = rep["labels"].get<std::vector<std::string>>();
    const size_t blue = std::find(labels.begin(), labels.end(), "blue") - labels.begin();
    EXPECT_NEAR(first["scores"][blue].get<double>(), expect, 1e-4);
    // k-shot needs a demonstrations file; a template without {text} is refused
    EXPECT_NE(test::run_command(std::string(KOTSU_CLI) + " prompt eval --model " + o.out + " --data " + dir + "/facts.csv --shots 2", &status).find("shots"),
              std::string::npos);
    EXPECT_NE(test::run_command(std::string(KOTSU_CLI) + " prompt eval --model " + o.out + " --data " + dir + "/facts.csv --template 'no slot'", &status).find("{text}"),
              std::string::npos);
    const std::string shot = test::run_command(std::string(KOTSU_CLI) + " prompt eval --model " + o.out + " --data " + dir + "/facts.csv --shots-from " + dir +
                                                   "/facts.csv --shots 1 --template 'colour of the {text} ->' --out " + dir + "/shot.json --threads 2",
                                               &status);
    ASSERT_EQ(status, 0) << shot;
    EXPECT_EQ(read_json(dir + "/shot.json")["results"][0]["shots"], 1);
  }
  // the trained model answers every prompt with its completion (greedy, through the CLI)
  for (const auto& [q, a] : kFacts) {
    int status = 0;
    const std::string out = test::run_command(std::string(KOTSU_CLI) + " generate --model " + o.out + " --prompt 'colour of the " + q +
                                                  " ->' --max-new-tokens 12 --threads 2",
                                              &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(out, a + "\n") << q;
  }
}

TEST(LmTrain, GradientAccumulationEqualsTheBiggerBatch) {
  const std::string dir = test::temp_dir("lm-accum");
  const std::string data = write_facts(dir);
  TrainHooks quiet;
  quiet.quiet = true;
  TrainOptions big = lora_options(dir, data), acc = big;
  big.epochs = acc.epochs = 2;
  big.batch_size = 6;
  big.out = dir + "/big";
  acc.batch_size = 2;
  acc.grad_accum = 3;
  acc.out = dir + "/acc";
  train_causal_lm(big, quiet);
  train_causal_lm(acc, quiet);
  // packed micro-batches train the same adapter as padded ones
  TrainOptions packed = acc;
  packed.packing = true;
  packed.out = dir + "/packed";
  train_causal_lm(packed, quiet);
  {
    const auto p = load_safetensors(packed.out + "/adapter_model.safetensors"), q = load_safetensors(acc.out + "/adapter_model.safetensors");
    double worst_packed = 0;
    for (const auto& [name, t] : p) worst_packed = std::max(worst_packed, (t - q.at(name)).abs().max().item<double>());
    std::printf("packed vs padded: largest difference %.3g\n", worst_packed);
    EXPECT_LT(worst_packed, 1e-5);
  }
  const auto a = load_safetensors(big.out + "/adapter_model.safetensors"), b = load_safetensors(acc.out + "/adapter_model.safetensors");
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, t] : a) worst = std::max(worst, (t - b.at(name)).abs().max().item<double>());
  std::printf("accumulated vs one batch: largest difference %.3g\n", worst);
  EXPECT_LT(worst, 1e-5);
  // and differs from three separate steps of 2 (the test would pass trivially if accumulation did nothing)
  TrainOptions small = acc;
  small.grad_accum = 1;
  small.out = dir + "/small";
  train_causal_lm(small, quiet);
  const auto c = load_safetensors(small.out + "/adapter_model.safetensors");
  double diff = 0;
  for (const auto& [name, t] : a) diff = std::max(diff, (t - c.at(name)).abs().max().item<double>());
  EXPECT_GT(diff, 1e-3);
}

TEST(LmData, JinjaChatTemplatesLearnTheAssistantTurns) {
  // the fixture's templates (rendered byte-identically to Jinja2 in test_jinja), as a model's own template
  const auto fx = read_json(test::fixture("chat_templates.json"));
  InstructionExample chat;
  chat.messages = {{"system", "Be brief."}, {"user", "Where is my card?"}, {"assistant", "Posted Monday."}, {"user", "Thanks"}, {"assistant", "You are welcome."}};
  for (const std::string name : {"chatml", "zephyr", "phi-3", "llama-3"}) {
    SCOPED_TRACE(name);
    const std::string dir = test::temp_dir("lm-tpl");
    write_atomic(dir + "/tokenizer_config.json", nlohmann::json({{"chat_template", fx["templates"][name]}}).dump());
    const ChatFormat format("auto", dir, "<s>", "</s>");
    const RenderedExample r = format.render(chat);
    ASSERT_EQ(r.trained.size(), 2u) << r.text;
    const std::string first = r.text.substr(r.trained[0].first, r.trained[0].second - r.trained[0].first);
    const std::string second = r.text.substr(r.trained[1].first, r.trained[1].second - r.trained[1].first);
    // each learnt range starts with the answer and ends before the next user turn
    EXPECT_EQ(first.rfind("Posted Monday.", 0), 0u) << first;
    EXPECT_EQ(first.find("Thanks"), std::string::npos) << first;
    EXPECT_EQ(second.rfind("You are welcome.", 0), 0u) << second;
    EXPECT_EQ(r.text.substr(0, r.trained[0].first).find("Posted"), std::string::npos);
    EXPECT_EQ(r.has_bos, r.text.rfind("<s>", 0) == 0);
    // the generation prompt is the conversation's prefix before an answer
    EXPECT_EQ(r.text.rfind(format.generation_prompt({chat.messages.begin(), chat.messages.begin() + 2}), 0), 0u);
  }
  // a template whose generation prompt differs from its assistant header (a stray newline): refused, not mislearnt
  {
    const std::string dir = test::temp_dir("lm-tpl-bad");
    write_atomic(dir + "/chat.jinja", "{% for m in messages %}{{ m.role + ': ' + m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:\n{% endif %}");
    try {
      ChatFormat(dir + "/chat.jinja", "", "", "").render(chat);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot be located"), std::string::npos) << e.what();
    }
  }
  // a model without a template: "auto" says so and names the built-ins
  try {
    ChatFormat("auto", test::fixture("tiny_gpt2"), "", "");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chatml"), std::string::npos) << e.what();
  }
}

TEST(LmTrain, ChatDataWithAJinjaTemplateTeachesTheAssistantReplies) {
  const std::string dir = test::temp_dir("lm-chat");
  std::string rows;
  for (const auto& [q, a] : kFacts)
    rows += nlohmann::json({{"messages", {{{"role", "user"}, {"content", "colour of the " + q}}, {{"role", "assistant"}, {"content", a.substr(1)}}}}}).dump() + "\n";
  write_atomic(dir + "/chat.jsonl", rows);
  // a compact template (the tiny GPT-2 has 64 positions): the assistant turn ends with EOS
  write_atomic(dir + "/chat.jinja",
               "{% for m in messages %}{% if m.role == 'user' %}Q: {{ m.content }}\n{% else %}A: {{ m.content }}{{ eos_token }}\n{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}A: {% endif %}");
  TrainOptions o = lora_options(dir, dir + "/chat.jsonl");
  o.chat_template = dir + "/chat.jinja";
  o.epochs = 80;
  TrainHooks quiet;
  quiet.quiet = true;
  train_causal_lm(o, quiet);
  for (const auto& [q, a] : kFacts) {
    int status = 0;
    const std::string out = test::run_command(std::string(KOTSU_CLI) + " generate --model " + o.out + " --chat-template " + o.chat_template +
                                                  " --prompt 'colour of the " + q + "' --max-new-tokens 16 --threads 2",
                                              &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(out, a.substr(1) + "\n") << q;  // stopped at EOS
  }
}

TEST(LmTrain, AKilledRunResumesToTheUninterruptedResult) {
  const std::string dir = test::temp_dir("lm-resume");
  TrainOptions o = lora_options(dir, write_facts(dir));
  o.epochs = 4;
  o.batch_size = 2;
  o.lora_dropout = 0.1;  // dropout masks must follow (seed, epoch) too
  o.validation = true;
  o.val_fraction = 0.34;
  o.patience = 0;
  TrainHooks quiet;
  quiet.quiet = true;
  TrainOptions whole = o;
  whole.out = dir + "/whole";
  train_causal_lm(whole, quiet);
  TrainHooks killed = quiet;
  killed.stop_after_epoch = 2;  // returns after epoch 2's checkpoint, as if killed there
  train_causal_lm(o, killed);
  EXPECT_EQ(read_json(o.out + "/run.json")["status"], "running");
  EXPECT_TRUE(is_causal_lm_run(o.out));
  EXPECT_THROW(train_causal_lm(o, quiet), Error);  // the run exists: only --resume continues it
  const TrainResult r = resume_causal_lm(o.out, quiet);
  EXPECT_EQ(r.epochs_run, 4);
  EXPECT_EQ(read_json(o.out + "/run.json")["status"], "finished");
  const auto a = load_safetensors(whole.out + "/adapter_model.safetensors"), b = load_safetensors(o.out + "/adapter_model.safetensors");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  EXPECT_EQ(read_json(whole.out + "/run.json")["history"].size(), read_json(o.out + "/run.json")["history"].size());
  EXPECT_DOUBLE_EQ(read_json(whole.out + "/run.json")["best_metric"]["value"].get<double>(), read_json(o.out + "/run.json")["best_metric"]["value"].get<double>());
}
