// Input for the g++ benchmark in scripts/bench (bench/run_bench.py): compiled with `g++ -O1 -c` plain, under
// libmemtide.so and under heaptrack. Not built by CMake. It only has to make cc1plus allocate the way a
// moderately sized translation unit does: several standard headers, <regex> instantiations, a few templates.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace bench_input {

struct Token {
  std::string text;
  int line = 0;
};

using Value = std::variant<int64_t, double, std::string, std::vector<std::string>>;

std::vector<Token> Tokenize(const std::string& source) {
  static const std::regex kToken(R"(([A-Za-z_][A-Za-z0-9_]*)|([0-9]+(\.[0-9]+)?)|("[^"]*")|(\S))");
  std::vector<Token> tokens;
  int line = 1;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), kToken); it != std::sregex_iterator(); ++it) {
    tokens.push_back({it->str(), line});
    if (it->str() == ";") ++line;
  }
  return tokens;
}

std::map<std::string, Value> Parse(const std::vector<Token>& tokens) {
  std::map<std::string, Value> values;
  static const std::regex kNumber(R"([0-9]+)");
  static const std::regex kReal(R"([0-9]+\.[0-9]+)");
  for (size_t i = 0; i + 2 < tokens.size(); i += 3) {
    const std::string& value = tokens[i + 2].text;
    if (std::regex_match(value, kReal)) {
      values[tokens[i].text] = std::stod(value);
    } else if (std::regex_match(value, kNumber)) {
      values[tokens[i].text] = static_cast<int64_t>(std::stoll(value));
    } else if (!value.empty() && value.front() == '"') {
      values[tokens[i].text] = value.substr(1, value.size() - 2);
    } else {
      values[tokens[i].text] = std::vector<std::string>{value, tokens[i + 1].text};
    }
  }
  return values;
}

struct Describe {
  std::string operator()(int64_t v) const { return "int " + std::to_string(v); }
  std::string operator()(double v) const { return "real " + std::to_string(v); }
  std::string operator()(const std::string& v) const { return "string " + v; }
  std::string operator()(const std::vector<std::string>& v) const {
    return "list " + std::accumulate(v.begin(), v.end(), std::string());
  }
};

template <typename Key, typename Mapped>
std::unordered_map<Key, std::vector<Mapped>> GroupBy(const std::vector<std::pair<Key, Mapped>>& pairs) {
  std::unordered_map<Key, std::vector<Mapped>> groups;
  for (const auto& [key, mapped] : pairs) groups[key].push_back(mapped);
  for (auto& entry : groups) std::sort(entry.second.begin(), entry.second.end());
  return groups;
}

std::string Report(const std::map<std::string, Value>& values) {
  std::ostringstream out;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [name, value] : values) {
    const std::string text = std::visit(Describe{}, value);
    out << name << " = " << text << '\n';
    pairs.emplace_back(text.substr(0, text.find(' ')), name);
  }
  auto groups = GroupBy(pairs);
  std::set<std::string> kinds;
  for (const auto& entry : groups) kinds.insert(entry.first);
  for (const std::string& kind : kinds) out << kind << ": " << groups[kind].size() << '\n';
  std::regex_replace(std::ostreambuf_iterator<char>(out), kinds.begin()->begin(), kinds.begin()->end(),
                     std::regex("[aeiou]"), "*");
  return out.str();
}

std::function<std::string(const std::string&)> MakePipeline() {
  auto shared = std::make_shared<std::map<std::string, Value>>();
  return [shared](const std::string& source) {
    *shared = Parse(Tokenize(source));
    return Report(*shared);
  };
}

}  // namespace bench_input

std::string RunBenchInput(const std::string& source) { return bench_input::MakePipeline()(source); }
