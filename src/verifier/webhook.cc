#include "verifier/webhook.h"

#include <nlohmann/json.hpp>

#include "net/https_client.h"

namespace lim::verifier {

using nlohmann::json;

Result<WebhookUrl> ParseWebhookUrl(const std::string& url) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) {
    return Status::InvalidArgument("--webhook " + url + ": only https:// URLs (a verdict must not travel in clear)");
  }
  std::string rest = url.substr(scheme.size());
  WebhookUrl u;
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return Status::InvalidArgument("--webhook " + url + ": expected https://HOST[:PORT][/PATH]");
  }
  std::string port;
  if (authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("--webhook " + url + ": unclosed [");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status::InvalidArgument("--webhook " + url + ": bad port");
      port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return Status::InvalidArgument("--webhook " + url + ": no host");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) == 0 ||
        std::stoul(port) > 65535) {
      return Status::InvalidArgument("--webhook " + url + ": bad port \"" + port + "\"");
    }
    u.port = static_cast<uint16_t>(std::stoul(port));
  }
  return u;
}

std::string VerdictJson(const StateChange& change) {
  const std::string& agent = change.agent;
  json fs = json::array();
  for (const auto& f : change.findings) {
    if (!f.failure()) continue;
    json o = {{"reason", attest::ReasonName(f.reason)}, {"line", attest::FormatFinding(agent, f)}};
    if (f.entry) o["entry"] = *f.entry;
    if (f.pcr) o["pcr"] = *f.pcr;
    for (const auto& [k, v] : {std::pair<const char*, const std::string*>{"bank", &f.bank},
                               {"template", &f.tmpl}, {"path", &f.path}, {"digest", &f.digest},
                               {"reference", &f.reference}, {"detail", &f.detail}}) {
      if (!v->empty()) o[k] = *v;
    }
    fs.push_back(std::move(o));
  }
  json j = {{"agent", agent},
            {"status", attest::AgentStatusName(change.to)},
            {"previous", attest::AgentStatusName(change.from)},
            {"cause", change.cause},
            {"time", change.time},
            {"findings", fs}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::unique_ptr<Webhook>> Webhook::Create(WebhookOptions options, std::function<void(const std::string&)> log) {
  std::unique_ptr<Webhook> w(new Webhook);
  LIM_ASSIGN_OR_RETURN(w->url_, ParseWebhookUrl(options.url));
  if (options.max_attempts < 1) return Status::InvalidArgument("webhook: max_attempts must be at least 1");
  if (options.tls.cert_file.empty()) {
    LIM_ASSIGN_OR_RETURN(w->tls_, net::MakeClientTlsWithoutCertificate(options.tls.ca_file));
  } else {
    LIM_ASSIGN_OR_RETURN(w->tls_, net::MakeClientTls(options.tls));
  }
  w->options_ = std::move(options);
  w->log_ = std::move(log);
  w->thread_ = std::thread([p = w.get()] { p->Loop(); });
  return w;
}

Webhook::~Webhook() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Webhook::Notify(const StateChange& change) {
  std::string body = VerdictJson(change);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (queue_.size() < kMaxQueued) {
      queue_.emplace_back(change.agent, std::move(body));
      cv_.notify_one();
      return;
    }
    ++stats_.dropped;
    ++stats_.dropped_full;
  }
  log_("lim-verifier: webhook: queue full (" + std::to_string(kMaxQueued) + "), change of agent " + change.agent +
       " to " + attest::AgentStatusName(change.to) + " dropped");
}

WebhookStats Webhook::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void Webhook::Loop() {
  net::ClientOptions co;
  co.host = url_.host;
  co.port = url_.port;
  co.connect_timeout = options_.timeout;
  co.request_timeout = options_.timeout;
  co.max_response_body = 64 << 10;
  std::unique_ptr<net::HttpsClient> client;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto [agent, body] = std::move(queue_.front());
    queue_.pop_front();
    std::chrono::milliseconds backoff = options_.initial_backoff;
    std::string last_error;
    bool delivered = false;
    for (int attempt = 1; attempt <= options_.max_attempts && !stop_; ++attempt) {
      ++stats_.attempts;
      lk.unlock();
      if (!client) {
        auto c = net::HttpsClient::Create(tls_, co);
        if (c.ok()) client = std::move(c).value();
        else last_error = c.status().message();
      }
      if (client) {
        auto r = client->Request("POST", url_.target, body, "application/json");
        if (r.ok() && r->status >= 200 && r->status < 300) {
          delivered = true;
        } else {
          last_error = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message();
          client.reset();  // a fresh connection next time
        }
      }
      lk.lock();
      if (delivered) break;
      if (attempt < options_.max_attempts) {
        cv_.wait_for(lk, backoff, [this] { return stop_; });
        backoff *= 2;
      }
    }
    if (delivered) {
      ++stats_.delivered;
    } else {
      ++stats_.dropped;
      std::string line = "lim-verifier: webhook: verdict for agent " + agent + " not delivered after " +
                         std::to_string(options_.max_attempts) + " attempts: " + last_error;
      lk.unlock();
      log_(line);
      lk.lock();
    }
  }
}

}  // namespace lim::verifier
