#include "daemon/config_file.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <sstream>

namespace lim::daemon {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

Status LineError(int line, const std::string& msg) { return Status::InvalidArgument(std::to_string(line) + ": " + msg); }

// CLI11's config formatter, replaced by ParseConfigText so errors carry line numbers.
class LimdConfigFormatter : public CLI::ConfigINI {
 public:
  LimdConfigFormatter(const CLI::App* app, std::string default_path) : app_(app), default_path_(std::move(default_path)) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    file_ = ConfigPath();
    // In chunks up to one byte past the cap: a config file is small, and a zero-filled
    // buffer of the cap's size was most of the cost of reading one.
    std::string text;
    char chunk[16384];
    while (text.size() <= kMaxConfigBytes) {
      in.read(chunk, sizeof chunk);
      if (in.gcount() <= 0) break;
      text.append(chunk, static_cast<size_t>(in.gcount()));
    }
    if (text.size() > kMaxConfigBytes) {
      throw CLI::ConfigError("config file " + file_ + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes (the limit for a config file)");
    }
    auto entries = ParseConfigText(text, [this](const std::string& key) { return CheckKey(key); });
    if (!entries.ok()) throw CLI::ConfigError(file_ + ":" + entries.status().message());
    entries_.clear();
    hidden_ = false;
    std::vector<CLI::ConfigItem> out;
    // A repeated key is one item with several inputs: CLI11 takes only the first item of an
    // option. A key whose option the command line gave, or excludes (--policy on the
    // command line, builtin in the file), is dropped: flags override the file.
    for (const auto& e : *entries) {
      if (OverriddenByCommandLine(e.key)) {
        hidden_ = true;
        continue;
      }
      entries_.push_back(e);  // what CLI11 applies: its errors point at these lines
      auto it = std::find_if(out.begin(), out.end(), [&](const CLI::ConfigItem& i) { return i.name == e.key; });
      if (it == out.end()) {
        CLI::ConfigItem item;
        item.name = e.key;
        out.push_back(std::move(item));
        it = out.end() - 1;
      }
      it->inputs.push_back(e.value);
    }
    return out;
  }

  std::string ConfigPath() const {
    const CLI::Option* opt = app_->get_config_ptr();
    if (opt && opt->count() > 0) return opt->as<std::string>();
    return default_path_;
  }
  const std::string& file() const { return file_; }
  const std::vector<ConfigEntry>& entries() const { return entries_; }
  bool hidden() const { return hidden_; }

 private:
  Status CheckKey(const std::string& key) const {
    if (key == "config" || key == "help" || key == "version") return Status::InvalidArgument("'" + key + "' cannot be set in a config file");
    const CLI::Option* opt = app_->get_option_no_throw("--" + key);
    if (!opt || !opt->get_configurable()) {
      // The program's name (argv[0]'s last part, set by parse): limd, lim-agent, lim-verifier.
      std::string program = app_->get_name();
      program = program.substr(program.rfind('/') + 1);
      return Status::InvalidArgument("unknown key '" + key + "' (keys are " + (program.empty() ? "the" : program + "'s") +
                                     " long flags without --)");
    }
    return Status::Ok();
  }

  // CLI11 applies the file after the command line, so count() > 0 means "given as a flag".
  bool OverriddenByCommandLine(const std::string& key) const {
    const CLI::Option* opt = app_->get_option_no_throw("--" + key);
    if (!opt) return false;
    if (opt->count() > 0) return true;
    for (const CLI::Option* other : opt->get_excludes()) {
      if (other->count() > 0) return true;
    }
    return false;
  }

  const CLI::App* app_;
  std::string default_path_;
  mutable std::string file_;
  mutable std::vector<ConfigEntry> entries_;
  mutable bool hidden_ = false;  // some lines were dropped for a command-line flag
};

}  // namespace

Result<std::vector<ConfigEntry>> ParseConfigText(const std::string& text,
                                                 const std::function<Status(const std::string& key)>& check_key) {
  std::vector<ConfigEntry> out;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') return LineError(line_no, "sections are not used: write 'key = value' lines");
    size_t eq = line.find('=');
    if (eq == std::string::npos) return LineError(line_no, "expected 'key = value', got '" + line + "'");
    ConfigEntry e;
    e.line = line_no;
    e.key = Trim(line.substr(0, eq));
    e.value = Trim(line.substr(eq + 1));
    if (e.key.empty()) return LineError(line_no, "missing key before '='");
    if (e.key.rfind("--", 0) == 0) return LineError(line_no, "write the key without dashes: '" + e.key.substr(2) + "'");
    for (char c : e.key) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
        return LineError(line_no, "bad character in key '" + e.key + "'");
      }
    }
    if (e.value.size() >= 2 && (e.value.front() == '"' || e.value.front() == '\'')) {
      if (e.value.back() != e.value.front()) return LineError(line_no, "unterminated quote in value");
      e.value = e.value.substr(1, e.value.size() - 2);
    } else if (!e.value.empty() && e.value.front() == '[') {
      return LineError(line_no, "one value per line: repeat the key for a list");
    }
    if (e.value.empty()) return LineError(line_no, "missing value for '" + e.key + "'");
    Status s = check_key(e.key);
    if (!s.ok()) return LineError(line_no, s.message());
    out.push_back(std::move(e));
  }
  return out;
}

void AddConfigOption(CLI::App* app, const std::string& default_path) {
  app->set_config("--config", default_path,
                  "config file: 'key = value' lines, keys are the long flags without -- (flags override it); "
                  "a missing default file is fine",
                  false);
  app->config_formatter(std::make_shared<LimdConfigFormatter>(app, default_path));
}

std::string ConfigFileWithHiddenEntries(const CLI::App& app) {
  auto f = std::dynamic_pointer_cast<LimdConfigFormatter>(app.get_config_formatter());
  return f && f->hidden() ? f->file() : "";
}

std::string DescribeParseError(const CLI::App& app, const CLI::Error& e) {
  std::string what = e.what();
  auto f = std::dynamic_pointer_cast<LimdConfigFormatter>(app.get_config_formatter());
  if (!f || f->file().empty() || what.rfind(f->file() + ":", 0) == 0) return what;
  // A value CLI11 could not take: CLI11 names the option; point at its line.
  for (const auto& entry : f->entries()) {
    std::string flag = "--" + entry.key;
    size_t at = what.find(flag);
    if (at != std::string::npos) {
      size_t end = at + flag.size();
      bool whole = end == what.size() || !(std::isalnum(static_cast<unsigned char>(what[end])) || what[end] == '-');
      if (whole) return f->file() + ":" + std::to_string(entry.line) + ": " + what;
    }
  }
  return what;
}

}  // namespace lim::daemon
