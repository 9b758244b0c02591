#include "kotsu/text/pii.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>

#include "kotsu/core/error.hpp"
#include "kotsu/text/regex.hpp"

namespace kotsu {

namespace {

struct KindInfo {
  PiiKind kind;
  const char* name;
  const char* placeholder;
};
constexpr KindInfo kKinds[kPiiKinds] = {
    {PiiKind::Url, "url", "<URL>"},
    {PiiKind::Email, "email", "<EMAIL>"},
    {PiiKind::Iban, "iban", "<IBAN>"},
    {PiiKind::CreditCard, "credit_card", "<CREDIT_CARD>"},
    {PiiKind::MyNumber, "my_number", "<MY_NUMBER>"},
    {PiiKind::Phone, "phone", "<PHONE>"},
    {PiiKind::IpV6, "ipv6", "<IP_ADDRESS>"},
    {PiiKind::IpV4, "ipv4", "<IP_ADDRESS>"},
    {PiiKind::PostalCode, "postal_code", "<POSTAL_CODE>"},
};

// The decimal digits of s (ASCII and full-width), as ASCII.
std::string digits_of(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= '0' && c <= '9') {
      out += static_cast<char>(c);
    } else if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBC) {
      const auto d = static_cast<unsigned char>(s[i + 2]);  // U+FF10..U+FF19 = EF BC 90..99
      if (d >= 0x90 && d <= 0x99) {
        out += static_cast<char>('0' + (d - 0x90));
        i += 2;
      }
    }
  }
  return out;
}

bool ip_valid(std::string_view s, int family) {
  const std::string z(s);
  unsigned char buf[16];
  return inet_pton(family, z.c_str(), buf) == 1;
}

// A pattern and the check its match must pass; `trim` may shorten the match's end (URLs).
struct Detector {
  PiiKind kind;
  std::unique_ptr<Regex> re;
  std::function<bool(std::string_view)> valid;
  bool trim_trailing_punctuation = false;
};

}  // namespace

const char* pii_name(PiiKind k) { return kKinds[static_cast<size_t>(k)].name; }
const char* pii_placeholder(PiiKind k) { return kKinds[static_cast<size_t>(k)].placeholder; }

std::vector<PiiKind> parse_pii_kinds(const std::string& list) {
  std::vector<PiiKind> out;
  if (list.empty() || list == "all") {
    for (const auto& k : kKinds) out.push_back(k.kind);
    return out;
  }
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string name = list.substr(pos, comma - pos);
    const KindInfo* hit = nullptr;
    for (const auto& k : kKinds)
      if (name == k.name || (name == "ip" && (k.kind == PiiKind::IpV4 || k.kind == PiiKind::IpV6))) {
        hit = &k;
        if (name == "ip") out.push_back(k.kind);
      }
    if (!hit) {
      std::string known;
      for (const auto& k : kKinds) known += std::string(known.empty() ? "" : ", ") + k.name;
      throw Error("options", "pii_types", "unknown kind '" + name + "' (known: " + known + ", ip, all)");
    }
    if (name != "ip") out.push_back(hit->kind);
    pos = comma + 1;
  }
  return out;
}

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (d < 0 || d > 9) return false;
    if (twice && (d *= 2) > 9) d -= 9;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool my_number_valid(std::string_view d) {
  if (d.size() != 12) return false;
  // check digit = 11 - (sum of P_n * Q_n mod 11), 0 when the remainder is 0 or 1; P_n = the n-th digit from
  // the right of the first 11, Q_n = n + 1 for n <= 6, n - 5 above
  int sum = 0;
  for (int n = 1; n <= 11; ++n) {
    const int p = d[static_cast<size_t>(11 - n)] - '0';
    if (p < 0 || p > 9) return false;
    sum += p * (n <= 6 ? n + 1 : n - 5);
  }
  const int r = sum % 11;
  return d[11] - '0' == (r <= 1 ? 0 : 11 - r);
}

bool iban_valid(std::string_view s) {
  if (s.size() < 15 || s.size() > 34) return false;
  const std::string r = std::string(s.substr(4)) + std::string(s.substr(0, 4));
  int mod = 0;
  for (char c : r) {
    if (c >= '0' && c <= '9') mod = (mod * 10 + (c - '0')) % 97;
    else if (c >= 'A' && c <= 'Z') mod = (mod * 100 + (c - 'A' + 10)) % 97;
    else return false;
  }
  return mod == 1;
}

struct PiiMasker::Impl {
  std::vector<Detector> detectors;
};

PiiMasker::PiiMasker(const std::vector<PiiKind>& kinds) : impl_(std::make_unique<Impl>()) {
  auto wanted = [&](PiiKind k) { return kinds.empty() || std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  auto add = [&](PiiKind k, const std::string& pattern, std::function<bool(std::string_view)> valid, bool trim = false) {
    if (!wanted(k)) return;
    impl_->detectors.push_back({k, std::make_unique<Regex>(pattern, "pii", pii_name(k)), std::move(valid), trim});
  };
  auto any = [](std::string_view) { return true; };
  auto digit_count = [](size_t lo, size_t hi) {
    return [lo, hi](std::string_view s) {
      const size_t n = digits_of(s).size();
      return n >= lo && n <= hi;
    };
  };
  const std::string D = "[0-9\\x{FF10}-\\x{FF19}]";                      // ASCII or full-width digit
  // hyphens: ASCII, U+2010..2013, minus sign, full-width hyphen-minus, the long vowel mark often typed for one
  const std::string HI = "\\-\\x{2010}-\\x{2013}\\x{2212}\\x{FF0D}\\x{30FC}";
  const std::string H = "[" + HI + "]", SEP = "[ " + HI + "]";
  // not part of a longer run of digit groups (a 12-digit prefix of a 16-digit card is no My Number)
  const std::string NB = "(?<!" + D + ")(?<!" + D + H + ")", NA = "(?!" + D + ")(?!" + H + D + ")";
  add(PiiKind::Url, R"((?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>"'\x{3000}-\x{303F}\x{FF08}\x{FF09}]+)", any, true);
  add(PiiKind::Email, R"((?i)(?<![A-Za-z0-9_.%+-])[a-z0-9](?:[a-z0-9._%+-]*[a-z0-9_%+-])?@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}(?![A-Za-z0-9_-]))", any);
  add(PiiKind::Iban, R"((?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9]))", [](std::string_view s) {
    std::string c;
    for (char ch : s)
      if (ch != ' ') c += ch;
    return iban_valid(c);
  });
  add(PiiKind::CreditCard, NB + "(?:" + D + SEP + "?){12,18}" + D + NA, [](std::string_view s) {
    const std::string d = digits_of(s);
    return d.size() >= 13 && d.size() <= 19 && luhn_valid(d);
  });
  add(PiiKind::MyNumber, NB + D + "{4}" + SEP + "?" + D + "{4}" + SEP + "?" + D + "{4}" + NA,
      [](std::string_view s) { return my_number_valid(digits_of(s)); });
  // phones: international (+81 90-1234-5678, +1 (415) 555-0100, +44 20 7946 0958), Japanese (03-1234-5678,
  // 090-1234-5678, (03)1234-5678, 0120-123-456, 09012345678), North American ((415) 555-0100, 415-555-0100)
  add(PiiKind::Phone, R"((?<![A-Za-z0-9_+])\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}(?![0-9]))", digit_count(8, 15));
  add(PiiKind::Phone, NB + "[0\\x{FF10}]" + D + "{1,4}" + H + D + "{1,4}" + H + D + "{3,4}" + NA, digit_count(10, 11));
  add(PiiKind::Phone, "[(\\x{FF08}][0\\x{FF10}]" + D + "{1,4}[)\\x{FF09}] ?" + D + "{1,4}" + H + D + "{4}" + NA, digit_count(10, 11));
  add(PiiKind::Phone, NB + "0[5789]0[0-9]{8}" + NA, any);
  add(PiiKind::Phone, R"((?<![0-9])(?:\([0-9]{3}\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}(?![0-9]))", any);
  add(PiiKind::IpV6, R"((?i)(?<![A-Za-z0-9_:.])(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{1,4}|[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![A-Za-z0-9_:]))",
      [](std::string_view s) {
        // a decimal digit somewhere: "a::b" in code is valid IPv6 but no address
        return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) && ip_valid(s, AF_INET6);
      });
  add(PiiKind::IpV4, R"((?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9]))", [](std::string_view s) { return ip_valid(s, AF_INET); });
  add(PiiKind::PostalCode, "\\x{3012} ?" + D + "{3}" + H + "?" + D + "{4}" + NA, any);
  add(PiiKind::PostalCode, NB + D + "{3}" + H + D + "{4}" + NA, any);
}

PiiMasker::~PiiMasker() = default;

std::string PiiMasker::mask(std::string_view text, PiiCounts* counts) const {
  struct Hit {
    size_t begin, end;
    PiiKind kind;
  };
  std::vector<Hit> hits;
  auto overlaps = [&](size_t b, size_t e) {
    return std::any_of(hits.begin(), hits.end(), [&](const Hit& h) { return b < h.end && h.begin < e; });
  };
  for (const auto& d : impl_->detectors) {
    for (auto [b, e] : d.re->find_all(text)) {
      if (d.trim_trailing_punctuation)
        while (e > b && std::string_view(".,;:!?)]}'\"").find(text[e - 1]) != std::string_view::npos) --e;
      if (e <= b || overlaps(b, e) || !d.valid(text.substr(b, e - b))) continue;
      hits.push_back({b, e, d.kind});
    }
  }
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.begin < b.begin; });
  std::string out;
  size_t pos = 0;
  for (const Hit& h : hits) {
    out.append(text.substr(pos, h.begin - pos));
    out += pii_placeholder(h.kind);
    if (counts) ++(*counts)[static_cast<size_t>(h.kind)];
    pos = h.end;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace kotsu
