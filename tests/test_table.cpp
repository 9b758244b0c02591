#include "kotsu/data/table.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {
std::string write_tmp(const std::string& name, const std::string& content) {
  std::string p = test::temp_dir("table") + "/" + name;
  write_atomic(p, content);
  return p;
}
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Table, CsvQuotingPerRfc4180) {
  auto p = write_tmp("a.csv", "text,label\r\n\"hello, \"\"world\"\"\",pos\r\n\"two\nlines\",neg\nplain,pos\n");
  Table t = read_table(p);
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0][0], "hello, \"world\"");
  EXPECT_EQ(t.rows[1][0], "two\nlines");
  EXPECT_EQ(t.rows[2][1], "pos");
  EXPECT_EQ(t.lines[2], 5u);  // the quoted newline counts
}

TEST(Table, TsvAndJsonl) {
  Table t = read_table(write_tmp("a.tsv", "label\tsentence\n1\tit's \"great\"\n0\tbad\n"));
  EXPECT_EQ(t.rows[0][1], "it's \"great\"");
  Table j = read_table(write_tmp("a.jsonl", "{\"text\": \"hi\", \"label\": 3}\n\n{\"text\": \"yo\", \"label\": \"x\"}\n"));
  EXPECT_EQ(j.rows.size(), 2u);
  EXPECT_EQ(j.rows[0][j.column("label", "")], "3");
  EXPECT_EQ(j.lines[1], 3u);
}

TEST(Table, ErrorsNameFileLineAndReason) {
  auto p = write_tmp("bad.csv", "text,label\nok,1\n\"never closed,1\n");
  auto e = error_of([&] { read_table(p); });
  EXPECT_NE(e.find(p), std::string::npos);
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;

  e = error_of([&] { read_table(write_tmp("f.csv", "text,label\na,1,extra\n")); });
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  EXPECT_NE(e.find("3 fields"), std::string::npos) << e;

  e = error_of([&] { read_table(write_tmp("u.csv", "text,label\nok,1\nbad \xff byte,1\n")); });
  EXPECT_NE(e.find("line 3, column 5"), std::string::npos) << e;
  EXPECT_NE(e.find("UTF-8"), std::string::npos) << e;

  e = error_of([&] { read_table(write_tmp("j.jsonl", "{\"a\":1}\n[1,2]\n")); });
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;

  e = error_of([&] { load_text_dataset(write_tmp("c.csv", "sentence,label\nhi,1\n"), TextColumns{}); });
  EXPECT_NE(e.find("column 'text' not found"), std::string::npos) << e;
  EXPECT_NE(e.find("sentence, label"), std::string::npos) << e;

  e = error_of([&] { load_text_dataset(write_tmp("e.csv", "text,label\nhi,1\n  ,0\n"), TextColumns{}); });
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("empty text"), std::string::npos) << e;

  e = error_of([&] { read_table(write_tmp("x.parquet", "")); });
  EXPECT_NE(e.find("unknown data format"), std::string::npos) << e;
}

TEST(TextDataset, LabelsSortNumericallyAndUnknownLabelsAreNamed) {
  auto d = load_text_dataset(write_tmp("n.csv", "text,label\na,10\nb,2\nc,2\nd,1\n"), TextColumns{});
  EXPECT_EQ(collect_labels(d), (std::vector<std::string>{"1", "2", "10"}));
  auto e = error_of([&] { label_ids(d, {"1", "2"}); });
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown label '10'"), std::string::npos) << e;
}

TEST(TextDataset, StratifiedSplitKeepsClassShares) {
  std::vector<int64_t> y;
  for (int i = 0; i < 90; ++i) y.push_back(0);
  for (int i = 0; i < 10; ++i) y.push_back(1);
  std::vector<size_t> a, b, a2, b2;
  stratified_split(y, 0.2, 7, a, b);
  EXPECT_EQ(a.size() + b.size(), 100u);
  int ones = 0;
  for (size_t i : b) ones += y[i] == 1;
  EXPECT_EQ(b.size(), 20u);
  EXPECT_EQ(ones, 2);
  stratified_split(y, 0.2, 7, a2, b2);
  EXPECT_EQ(b, b2);  // deterministic in the seed
  stratified_split(y, 0.2, 8, a2, b2);
  EXPECT_NE(b, b2);
}

TEST(TextDataset, BatchesPadToLongestRow) {
  std::string dir = test::temp_dir("batch");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n");
  auto tok = Tokenizer::load(dir + "/vocab.txt");
  TextDataset d;
  d.texts = {"hello", "hello world hello"};
  d.lines = {1, 2};
  auto enc = encode_texts(tok, d, 16, {0, 1});
  auto b = make_batch(enc, {0, 1});
  EXPECT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(b.attention_mask.sum().item<int64_t>(), 3 + 5);
  EXPECT_EQ(b.input_ids[0][3].item<int64_t>(), 0);  // [PAD]
  EXPECT_EQ(b.labels[1].item<int64_t>(), 1);
}

TEST(TextDataset, LengthGroupedBatchesCoverEveryRowOnceWithLessPadding) {
  std::mt19937_64 rng(1);
  std::vector<size_t> lengths(1000), order(1000);
  for (size_t i = 0; i < 1000; ++i) {
    lengths[i] = 5 + (i * 7919) % 120;
    order[i] = i;
  }
  std::shuffle(order.begin(), order.end(), rng);
  auto padded = [&](const std::vector<std::vector<size_t>>& bs) {
    size_t cells = 0;
    for (auto& b : bs) {
      size_t mx = 0;
      for (size_t i : b) mx = std::max(mx, lengths[i]);
      cells += mx * b.size();
    }
    return cells;
  };
  std::mt19937_64 r1(2), r2(2);
  auto plain = make_batches(order, lengths, 16, false, r1);
  auto grouped = make_batches(order, lengths, 16, true, r2);
  std::vector<int> seen(1000, 0);
  for (auto& b : grouped) {
    EXPECT_LE(b.size(), 16u);
    for (size_t i : b) ++seen[i];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_EQ(grouped.size(), plain.size());
  EXPECT_LT(padded(grouped), padded(plain) * 0.7);  // far fewer padded cells
}

TEST(TextDataset, SentencePairsGetTwoSegments) {
  std::string dir = test::temp_dir("pairs");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n");
  write_atomic(dir + "/pairs.jsonl", "{\"q\": \"hello\", \"a\": \"world world\", \"y\": \"same\"}\n");
  TextColumns cols;
  cols.text = "q";
  cols.text_pair = "a";
  cols.label = "y";
  auto d = load_text_dataset(dir + "/pairs.jsonl", cols);
  auto tok = Tokenizer::load(dir + "/vocab.txt");
  auto enc = encode_texts(tok, d, 16, {0});
  EXPECT_EQ(enc.enc[0].ids, (std::vector<int64_t>{2, 4, 3, 5, 5, 3}));
  EXPECT_EQ(enc.enc[0].type_ids, (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  auto b = make_batch(enc, {0});
  EXPECT_EQ(b.token_type_ids.sum().item<int64_t>(), 3);
}
