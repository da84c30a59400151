#include "runtime/app/server/webui/webui.h"

#include <string>
#include <string_view>

#include "httplib.h"
#include "runtime/app/server/webui/webui_files.h"

namespace pinfer {
namespace {

const char* ContentTypeOf(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

nlohmann::json PropsJson(const ServerProps& props) {
  return nlohmann::json{{"model", props.model},
                        {"context_length", props.context_length},
                        {"ffn_mode", props.ffn_mode},
                        {"total_slots", props.total_slots},
                        {"slots_busy", props.busy_slots},
                        {"max_tokens", props.max_tokens}};
}

namespace {

std::string PathOf(const EmbeddedFile& file) {
  return file.name == "index.html" ? "/" : "/" + std::string(file.name);
}

}  // namespace

bool IsWebUiPath(const std::string& path) {
  for (const EmbeddedFile& file : EmbeddedWebUiFiles()) {
    if (PathOf(file) == path) return true;
  }
  return false;
}

void RouteWebUi(httplib::Server& server) {
  for (const EmbeddedFile& file : EmbeddedWebUiFiles()) {
    const std::string path = PathOf(file);
    const EmbeddedFile served = file;  // the arrays live as long as the program
    server.Get(path, [served](const httplib::Request&, httplib::Response& res) {
      res.set_content(served.bytes.data(), served.bytes.size(), ContentTypeOf(served.name));
      // A rebuilt server serves its own page, not one a browser kept.
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Content-Type-Options", "nosniff");
      // The page runs its own script and talks to this server only: no inline code, nothing
      // from elsewhere, not framed by another site.
      res.set_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
      res.set_header("Referrer-Policy", "no-referrer");
    });
  }
}

}  // namespace pinfer
