// kotsu/text/pii: finds personal data in text and replaces it with typed placeholders (<EMAIL>, <PHONE>,
// ...) before anything is trained or logged. Candidates come from PCRE2 patterns; numbers with a check
// digit are kept only when it is right (credit cards: Luhn; Japanese individual numbers: the My Number
// check digit; IBANs: ISO 13616 mod 97), IP addresses only when inet_pton parses them. Full-width digits
// and Japanese hyphens (－ ー ‐) count in phone numbers and postal codes. Written by hand: Debian has no
// C/C++ PII library (Microsoft Presidio, the usual tool, is Python).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kotsu {

// In the order they are looked for: an earlier kind wins where two overlap (a URL's e-mail-like part
// stays part of the URL; a card number is not also a phone number).
enum class PiiKind { Url, Email, Iban, CreditCard, MyNumber, Phone, IpV6, IpV4, PostalCode };
constexpr size_t kPiiKinds = 9;

const char* pii_name(PiiKind k);         // "email", "phone", ... (for reports and --pii-types)
const char* pii_placeholder(PiiKind k);  // "<EMAIL>", "<PHONE>", ...
// Parses a comma-separated list of names ("email,phone") or "all"; an unknown name is an error naming it.
std::vector<PiiKind> parse_pii_kinds(const std::string& list);

// Check digits, exposed for the tests: digits only (separators removed).
bool luhn_valid(std::string_view digits);
bool my_number_valid(std::string_view digits12);
bool iban_valid(std::string_view compact);

using PiiCounts = std::array<int64_t, kPiiKinds>;

class PiiMasker {
 public:
  explicit PiiMasker(const std::vector<PiiKind>& kinds = {});  // empty: every kind
  ~PiiMasker();
  PiiMasker(const PiiMasker&) = delete;
  PiiMasker& operator=(const PiiMasker&) = delete;
  // The text with every found item replaced by its placeholder; counts (if given) are incremented.
  std::string mask(std::string_view text, PiiCounts* counts = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kotsu
