#include "kotsu/text/wordpiece.hpp"

#include <fstream>
#include <sstream>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

TEST(WordPiece, BertBgeVectorsFromGguf) {
  std::string base = test::shared_dir() + "/tokenizers/llama.cpp-vocab/ggml-vocab-bert-bge.gguf";
  KOTSU_REQUIRE_PATH(base);
  auto tok = WordPieceTokenizer::from_gguf(base);
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  auto inputs = test::vocab_test_inputs(base + ".inp");
  auto expected = test::vocab_test_outputs(base + ".out");
  ASSERT_EQ(inputs.size(), expected.size());
  ASSERT_GT(inputs.size(), 40u);
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(tok.encode(inputs[i]), expected[i]) << "input #" << i << ": '" << inputs[i] << "'";
}

TEST(WordPiece, VocabTxtGreedyLongestMatchAndUnk) {
  std::string dir = test::temp_dir("wp");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\nhello\n,\n!\n##a\nwant\n");
  auto tok = WordPieceTokenizer::from_vocab_txt(dir + "/vocab.txt");
  EXPECT_EQ(tok.encode("UnAffable, hello!"), (std::vector<int64_t>{4, 5, 6, 8, 7, 9}));
  EXPECT_EQ(tok.encode("unwanted"), (std::vector<int64_t>{1}));  // no "##want": whole word is [UNK]
  auto e = tok.encode_for_model("hello hello hello", 4);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{2, 7, 7, 3}));
  auto p = tok.encode_pair_for_model("hello hello hello", "hello", 6);
  EXPECT_EQ(p.ids, (std::vector<int64_t>{2, 7, 7, 3, 7, 3}));
  EXPECT_EQ(p.type_ids, (std::vector<int64_t>{0, 0, 0, 0, 1, 1}));
}

TEST(WordPiece, NormalisationRules) {
  std::string dir = test::temp_dir("wp2");
  write_atomic(dir + "/vocab.txt", "[UNK]\nfuhrer\n\xe4\xb8\xad\n\xe6\x96\x87\ncafe\n");
  auto tok = WordPieceTokenizer::from_vocab_txt(dir + "/vocab.txt");
  // accents stripped, control characters dropped, CJK split into single characters
  auto words = tok.pre_tokenize("F\xc3\xbchrer\x01 Caf\xc3\xa9\xe4\xb8\xad\xe6\x96\x87");
  EXPECT_EQ(words, (std::vector<std::string>{"fuhrer", "cafe", "\xe4\xb8\xad", "\xe6\x96\x87"}));
  WordPieceOptions cased;
  cased.lowercase = false;
  auto tok2 = WordPieceTokenizer::from_vocab_txt(dir + "/vocab.txt", cased);
  EXPECT_EQ(tok2.pre_tokenize("Caf\xc3\xa9!"), (std::vector<std::string>{"Caf\xc3\xa9", "!"}));
}

TEST(WordPiece, SaveLoadRoundTrip) {
  std::string dir = test::temp_dir("wp3");
  write_atomic(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  WordPieceOptions o;
  o.lowercase = false;
  auto tok = WordPieceTokenizer::from_vocab_txt(dir + "/vocab.txt", o);
  std::string out = test::temp_dir("wp4");
  tok.save(out);
  auto back = WordPieceTokenizer::from_model_dir(out);
  EXPECT_FALSE(back.options().lowercase);
  EXPECT_EQ(back.encode("hello Hello"), (std::vector<int64_t>{4, 1}));
}

TEST(WordPiece, MissingFilesAreNamed) {
  try {
    WordPieceTokenizer::from_model_dir("/nonexistent/model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model"), std::string::npos);
  }
}

TEST(WordPiece, TokenizerJsonMatchesVocabTxt) {
  auto a = WordPieceTokenizer::from_model_dir(test::fixture("tiny_bert"));     // vocab.txt
  auto b = WordPieceTokenizer::from_model_dir(test::fixture("tiny_bert_tj"));  // tokenizer.json only
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  for (const char* s : {"My card was STOLEN, yesterday!", "transfer 100 to my friend", "Café déjà vu", "where's the bank?"})
    EXPECT_EQ(a.encode(s), b.encode(s)) << s;
  EXPECT_EQ(b.cls_id(), 2);
  EXPECT_TRUE(b.options().lowercase);
}
