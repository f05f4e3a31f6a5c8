#include "debs/generated_files.h"

#include <array>

namespace lim::debs {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

struct Rule {
  const char* prefix;  // path starts with this
  const char* suffix;  // and ends with this ("" = anything)
  const char* reason;
};

// Prefix/suffix rules, first match wins.
constexpr std::array<Rule, 22> kRules = {{
    {"/etc/ld.so.cache", "", "ldconfig's cache of the installed libraries"},
    {"/boot/initrd.img-", "", "initramfs image built by update-initramfs"},
    {"/boot/initramfs-", "", "initramfs image built by dracut"},
    {"/var/lib/initramfs-tools/", "", "update-initramfs state"},
    {"/etc/alternatives/", "", "update-alternatives link"},
    {"/usr/lib/locale/locale-archive", "", "locale archive built by locale-gen"},
    {"/etc/ssl/certs/", "", "CA bundle and hash links built by update-ca-certificates"},
    {"/usr/share/mime/", ".cache", "MIME database built by update-mime-database"},
    {"/usr/share/mime/", ".xml", "MIME database built by update-mime-database"},
    {"/usr/share/icons/", "icon-theme.cache", "icon cache built by gtk-update-icon-cache"},
    {"/usr/share/glib-2.0/schemas/gschemas.compiled", "", "GSettings schemas compiled by glib-compile-schemas"},
    {"/usr/share/info/dir", "", "info directory built by install-info"},
    {"/var/cache/", "", "cache written at run time"},
    {"/var/lib/dpkg/", "", "dpkg's own database"},
    {"/var/lib/apt/", "", "apt's package lists and state"},
    {"/var/lib/ucf/", "", "ucf's configuration-file registry"},
    {"/var/lib/systemd/", "", "systemd state"},
    {"/var/log/", "", "log file"},
    {"/etc/machine-id", "", "machine id written at first boot"},
    {"/etc/adjtime", "", "clock state written by hwclock"},
    {"/etc/mtab", "", "link to /proc/self/mounts"},
    {"/etc/.pwd.lock", "", "lock file of the shadow tools"},
}};

}  // namespace

std::optional<std::string> GeneratedReason(std::string_view path) {
  // Python byte code: py3compile (dh_python3's postinst) writes it beside the package's .py.
  if (EndsWith(path, ".pyc") && path.find("/__pycache__/") != std::string_view::npos) {
    return "Python byte code compiled by py3compile from the package's .py";
  }
  // Kernel module indexes written by depmod (/lib/modules/VER/modules.dep, .alias.bin, …).
  for (std::string_view mods : {"/lib/modules/", "/usr/lib/modules/"}) {
    if (!StartsWith(path, mods)) continue;
    size_t slash = path.rfind('/');
    if (StartsWith(path.substr(slash + 1), "modules.") && path.substr(mods.size()).find('/') == slash - mods.size()) {
      return "kernel module index built by depmod";
    }
  }
  if (StartsWith(path, "/usr/lib/") && EndsWith(path, "/gio/modules/giomodule.cache")) {
    return "GIO module cache built by gio-querymodules";
  }
  if (StartsWith(path, "/usr/lib/") && EndsWith(path, "/loaders.cache")) {
    return "gdk-pixbuf loader cache built by gdk-pixbuf-query-loaders";
  }
  for (const Rule& r : kRules) {
    if (StartsWith(path, r.prefix) && EndsWith(path, r.suffix)) return std::string(r.reason);
  }
  return std::nullopt;
}

}  // namespace lim::debs
