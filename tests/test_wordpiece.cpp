#include "kotsu/text/tokenizer.hpp"

#include <fstream>
#include <sstream>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

// WordPiece through the Tokenizer pipeline: vocab.txt (+ tokenizer_config.json) and tokenizer.json.

TEST(WordPiece, VocabTxtGreedyLongestMatchAndUnk) {
  std::string dir = test::temp_dir("wp");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\nhello\n,\n!\n##a\nwant\n");
  auto tok = Tokenizer::load(dir + "/vocab.txt");
  EXPECT_EQ(tok.encode_ids("UnAffable, hello!"), (std::vector<int64_t>{4, 5, 6, 8, 7, 9}));
  EXPECT_EQ(tok.encode_ids("unwanted"), (std::vector<int64_t>{1}));  // no "##want": whole word is [UNK]
  EncodeOptions o;
  o.max_length = 4;
  EXPECT_EQ(tok.encode("hello hello hello", o).ids, (std::vector<int64_t>{2, 7, 7, 3}));
  o.max_length = 6;
  auto p = tok.encode_pair("hello hello hello", "hello", o);
  EXPECT_EQ(p.ids, (std::vector<int64_t>{2, 7, 7, 3, 7, 3}));
  EXPECT_EQ(p.type_ids, (std::vector<int64_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(tok.decode(tok.encode("UnAffable, hello!").ids), "unaffable, hello!");
}

TEST(WordPiece, NormalisationRules) {
  std::string dir = test::temp_dir("wp2");
  write_atomic(dir + "/vocab.txt", "[UNK]\nfuhrer\n\xe4\xb8\xad\n\xe6\x96\x87\ncafe\nCaf\xc3\xa9\n!\n");
  auto tok = Tokenizer::load(dir + "/vocab.txt");
  // accents stripped, control characters dropped, CJK split into single characters
  EXPECT_EQ(tok.encode_ids("F\xc3\xbchrer\x01 Caf\xc3\xa9\xe4\xb8\xad\xe6\x96\x87"), (std::vector<int64_t>{1, 4, 2, 3}));
  write_atomic(dir + "/tokenizer_config.json", R"({"do_lower_case": false})");
  auto cased = Tokenizer::load(dir + "/vocab.txt");
  EXPECT_EQ(cased.encode_ids("Caf\xc3\xa9!"), (std::vector<int64_t>{5, 6}));
}

TEST(WordPiece, SaveLoadRoundTrip) {
  std::string dir = test::temp_dir("wp3");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  write_atomic(dir + "/tokenizer_config.json", R"({"do_lower_case": false, "model_max_length": 128})");
  auto tok = Tokenizer::load(dir);
  std::string out = test::temp_dir("wp4");
  tok.save(out);
  auto back = Tokenizer::load(out);
  EXPECT_EQ(back.encode_ids("hello Hello"), (std::vector<int64_t>{4, 1}));  // still cased
  EXPECT_EQ(back.model_max_length(), 128u);
}

TEST(WordPiece, MissingFilesAreNamed) {
  try {
    Tokenizer::load("/nonexistent/model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model"), std::string::npos);
  }
  std::string dir = test::temp_dir("wp5");
  write_atomic(dir + "/vocab.txt", "a\nb\n");
  try {
    Tokenizer::load(dir + "/vocab.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[UNK]"), std::string::npos) << e.what();
  }
}

TEST(WordPiece, TokenizerJsonMatchesVocabTxt) {
  auto a = Tokenizer::load(test::fixture("tiny_bert"));     // vocab.txt
  auto b = Tokenizer::load(test::fixture("tiny_bert_tj"));  // tokenizer.json only
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  for (const char* s : {"My card was STOLEN, yesterday!", "transfer 100 to my friend", "Café déjà vu", "where's the bank?"}) {
    EXPECT_EQ(a.encode(s).ids, b.encode(s).ids) << s;
    EXPECT_EQ(a.encode_pair(s, "and more").type_ids, b.encode_pair(s, "and more").type_ids) << s;
  }
  EXPECT_EQ(b.encode("x").ids.front(), 2);  // [CLS]
}
