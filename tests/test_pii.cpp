// text/pii and `kotsu mask`: each kind of personal data is found in running text (Japanese and
// international formats, full-width digits), check digits reject look-alikes, ordinary numbers stay.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/data/mask_file.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/text/pii.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(Pii, CheckDigits) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("5555555555554444"));
  EXPECT_TRUE(luhn_valid("378282246310005"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_TRUE(my_number_valid("123456789018"));
  EXPECT_TRUE(my_number_valid("987654321093"));
  EXPECT_FALSE(my_number_valid("123456789012"));
  EXPECT_TRUE(iban_valid("GB82WEST12345698765432"));
  EXPECT_TRUE(iban_valid("DE89370400440532013000"));
  EXPECT_FALSE(iban_valid("GB82WEST12345698765433"));
}

struct Case {
  const char* in;
  const char* want;
};

TEST(Pii, MasksEachKindInRunningText) {
  PiiMasker m;
  const Case cases[] = {
      {"mail taro.yamada@example.co.jp today", "mail <EMAIL> today"},
      {"see https://example.com/a?b=c. Thanks", "see <URL>. Thanks"},
      {"(www.example.org/x)", "(<URL>)"},
      {"call 090-1234-5678 or 03-1234-5678", "call <PHONE> or <PHONE>"},
      {"電話：０９０－１２３４－５６７８まで", "電話：<PHONE>まで"},
      {"(03)1234-5678 / 0120-123-456 / 09012345678", "<PHONE> / <PHONE> / <PHONE>"},
      {"+81 90-1234-5678, +44 20 7946 0958, +1 (415) 555-0100", "<PHONE>, <PHONE>, <PHONE>"},
      {"US office (415) 555-0100", "US office <PHONE>"},
      {"card 4111 1111 1111 1111 exp", "card <CREDIT_CARD> exp"},
      {"card 4111-1111-1111-1112 is wrong", "card 4111-1111-1111-1112 is wrong"},
      {"マイナンバー 1234 5678 9018 です", "マイナンバー <MY_NUMBER> です"},
      {"not a number 1234 5678 9012", "not a number 1234 5678 9012"},
      {"IBAN GB82 WEST 1234 5698 7654 32.", "IBAN <IBAN>."},
      {"server 192.168.1.20 and 2001:db8::1 and fe80::1ff:fe23:4567:890a", "server <IP_ADDRESS> and <IP_ADDRESS> and <IP_ADDRESS>"},
      {"〒100-0001 東京都千代田区", "<POSTAL_CODE> 東京都千代田区"},
      {"郵便番号 530-0001", "郵便番号 <POSTAL_CODE>"},
  };
  for (const auto& c : cases) EXPECT_EQ(m.mask(c.in), c.want) << c.in;
}

TEST(Pii, LeavesOrdinaryTextAlone) {
  PiiMasker m;
  for (const char* s : {"version 1.2.3 released 2026-11-30 at 12:30:45", "std::string and a::b", "price ¥1,200 for 3 items",
                        "order #12345 shipped", "999.1.1.1 is not an address", "call me at noon", "score 0.95 vs 0.93",
                        "年収 600万円"}) {
    EXPECT_EQ(m.mask(s), s);
  }
}

TEST(Pii, PlantedCorpusRecallAndCleanNumbersUntouched) {
  // fixtures/make_pii_corpus.py: 200 items of each kind in English and Japanese sentences, several formats
  // each; 1,000 clean lines of prices, dates, times, quantities, order and invoice numbers
  PiiMasker m;
  std::map<std::string, std::pair<int, int>> hits;  // kind -> (masked exactly, planted)
  const std::string planted = read_file(test::fixture("pii_corpus/planted.jsonl"));
  std::istringstream lines(planted);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    const std::string kind = j["kind"], text = j["text"];
    const std::string masked = m.mask(text);
    const bool ok = masked == j["masked"].get<std::string>();  // the whole item, as its own kind, and nothing else
    auto& h = hits[kind];
    h.first += ok;
    h.second += 1;
    if (!ok) ADD_FAILURE() << kind << ": " << text << " -> " << masked;
  }
  ASSERT_EQ(hits.size(), 8u);
  for (const auto& [kind, h] : hits) {
    EXPECT_EQ(h.second, 200) << kind;
    EXPECT_GE(h.first, 198) << kind << " recall " << h.first / 200.0;  // >= 0.99
  }
  const std::string clean = read_file(test::fixture("pii_corpus/clean.txt"));
  std::istringstream cl(clean);
  int n = 0, changed = 0;
  for (std::string line; std::getline(cl, line); ++n) {
    if (m.mask(line) != line) {
      ++changed;
      ADD_FAILURE() << "masked an ordinary line: " << line << " -> " << m.mask(line);
    }
  }
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(changed, 0);
}

TEST(Pii, CountsPerKindAndSelectsKinds) {
  PiiCounts counts{};
  PiiMasker all;
  all.mask("a@b.com c@d.org 090-1234-5678 https://x.jp", &counts);
  EXPECT_EQ(counts[static_cast<size_t>(PiiKind::Email)], 2);
  EXPECT_EQ(counts[static_cast<size_t>(PiiKind::Phone)], 1);
  EXPECT_EQ(counts[static_cast<size_t>(PiiKind::Url)], 1);
  PiiMasker only_email(parse_pii_kinds("email"));
  EXPECT_EQ(only_email.mask("a@b.com 090-1234-5678"), "<EMAIL> 090-1234-5678");
  EXPECT_EQ(parse_pii_kinds("ip").size(), 2u);
  try {
    parse_pii_kinds("email,passport");
    FAIL() << "unknown kind accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("passport"), std::string::npos) << e.what();
  }
}

TEST(Pii, MaskFileKeepsOtherColumnsAndFieldTypes) {
  const std::string dir = test::temp_dir("mask");
  write_atomic(dir + "/in.csv", "id,text,label\n1,\"write to a@b.com, please\",x\n2,nothing here,y\n");
  PiiMasker m;
  MaskReport r = mask_file(dir + "/in.csv", dir + "/out.csv", {"text"}, m);
  EXPECT_EQ(r.rows, 2u);
  EXPECT_EQ(r.rows_changed, 1u);
  EXPECT_EQ(read_file(dir + "/out.csv"), "id,text,label\r\n1,\"write to <EMAIL>, please\",x\r\n2,nothing here,y\r\n");
  write_atomic(dir + "/in.jsonl", "{\"text\":\"tel 03-1234-5678\",\"label\":\"a\",\"score\":0.5}\n{\"text\":\"ok\",\"label\":\"b\",\"score\":1}\n");
  r = mask_file(dir + "/in.jsonl", dir + "/out.jsonl", {"text"}, m);
  EXPECT_EQ(read_file(dir + "/out.jsonl"), "{\"text\":\"tel <PHONE>\",\"label\":\"a\",\"score\":0.5}\n{\"text\":\"ok\",\"label\":\"b\",\"score\":1}\n");
  EXPECT_EQ(r.counts[static_cast<size_t>(PiiKind::Phone)], 1);
  EXPECT_THROW(mask_file(dir + "/in.csv", dir + "/in.csv", {"text"}, m), Error);
  try {
    mask_file(dir + "/in.csv", dir + "/o2.csv", {"body"}, m);
    FAIL() << "missing column accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("body"), std::string::npos) << e.what();
  }
  // the CLI prints counts, never the items
  int status;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " mask --data " + dir + "/in.csv --out " + dir + "/cli.csv", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("masked 1 items in 1 of 2 rows"), std::string::npos) << out;
  EXPECT_EQ(out.find("a@b.com"), std::string::npos) << out;
}

}  // namespace
}  // namespace kotsu

namespace kotsu {
namespace {

TEST(Pii, TrainWithMaskPiiKeepsOriginalsOutOfEverything) {
  const std::string dir = test::temp_dir("mask-train");
  // the synthetic task with an e-mail address and a phone number in every text
  std::string train = "text,label\n", test = "text,label\n";
  const std::string rows = read_file(test::fixture("task/train.csv"));
  size_t n = 0;
  for (size_t pos = rows.find('\n') + 1; pos < rows.size(); ++n) {
    const size_t nl = rows.find('\n', pos);
    std::string line = rows.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t q = line.rfind("\",\"");
    const std::string t = line.substr(1, q - 1), y = line.substr(q + 3, line.size() - q - 4);
    const std::string row = "\"" + t + " mail user" + std::to_string(n) + "@secret.example 090-1234-" + std::to_string(1000 + n) + "\"," + y + "\n";
    (n % 5 == 0 ? test : train) += row;
  }
  write_atomic(dir + "/train.csv", train);
  write_atomic(dir + "/test.csv", test);
  const std::string run = dir + "/run";
  auto sh = test::run_command;
  int status;
  std::string log = sh(std::string(KOTSU_CLI) + " train --model " + test::fixture("tiny_bert_init") + " --data " + dir +
                           "/train.csv --out " + run + " --strategy full --epochs 1 --threads 1 --mask-pii",
                       &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("masked personal data in " + dir + "/train.csv: email 240, phone 240"), std::string::npos) << log;
  std::string ev = sh(std::string(KOTSU_CLI) + " eval --run " + run + " --data " + dir + "/test.csv --threads 1 --predictions " + dir + "/pred.jsonl", &status);
  ASSERT_EQ(status, 0) << ev;
  const std::string pred = read_file(dir + "/pred.jsonl");
  EXPECT_NE(pred.find("mail <EMAIL> <PHONE>"), std::string::npos) << pred.substr(0, 300);
  std::string everything = log + ev + pred + read_file(run + "/run.json");
  for (const auto& e : std::filesystem::recursive_directory_iterator(run))
    if (e.is_regular_file() && e.path().extension() != ".safetensors") everything += read_file(e.path().string());
  EXPECT_EQ(everything.find("@secret.example"), std::string::npos);
  EXPECT_EQ(everything.find("090-1234-"), std::string::npos);
  std::string pr = sh("echo 'hello a@b.com' | " + std::string(KOTSU_CLI) + " predict --run " + run + " --json --threads 1", &status);
  ASSERT_EQ(status, 0) << pr;
  EXPECT_NE(pr.find("\"text\":\"hello <EMAIL>\""), std::string::npos) << pr;
}

}  // namespace
}  // namespace kotsu
