#!/usr/bin/env bash
# wine.installer: the NSIS installer of the mingw build (signum-setup.exe) installs silently
# into its own Wine prefix (not the shared one: it registers providers machine-wide, which the
# KSP and CSP tests running beside it also do), puts the four binaries into
# C:\Program Files\Signum (and the KSP into System32), records the agent's path, registers the CSP, adds the agent's logon start and the Add/Remove
# Programs entry; its uninstaller removes all of it again.
set -euo pipefail
: "${WINE_DIR:?}" "${MINGW_BUILD_DIR:?}" "${MINGW32_BUILD_DIR:?}"
setup=$MINGW_BUILD_DIR/installer/windows/signum-setup.exe
[ -f "$setup" ] || { echo "FAIL: $setup was not built (is nsis installed?)"; exit 1; }
export WINEPREFIX=$WINE_DIR/installer-prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export PATH=$WINE_DIR/loaders/lib/wine:$PATH:/usr/lib/wine
cleanup() { wineserver -k 2>/dev/null || true; rm -rf "$WINEPREFIX"; }
trap cleanup EXIT
rm -rf "$WINEPREFIX"
# Its wineserver persists until cleanup, as the shared prefix's does (setup.sh): a program
# started while the previous one's wineserver shuts down can meet a registry not yet saved (a CI
# run saw the installer's AgentPath missing right after it returned).
mkdir -p "$WINEPREFIX"
wineserver -p600 </dev/null >/dev/null 2>&1
# wine32 under qemu-i386 (loaders.sh): 32-bit programs (the prefix's WOW64 half, SysWOW64's
# regsvr32) start slowly, so every bound is wider there.
T=100
[ -f "$WINE_DIR/loaders/x86-emulated" ] && T=500
timeout $((T * 3)) wine64 wineboot -i >/dev/null 2>&1 || { echo "FAIL: wineboot"; exit 1; }

dir="$WINEPREFIX/drive_c/Program Files/Signum"
run_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
arp_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Signum'
csp_key='HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\'
csp_key+='Signum Cryptographic Service Provider'
fail() { echo "FAIL: $*"; exit 1; }
query() { timeout "$T" wine64 reg query "$@" 2>/dev/null | tr -d '\r'; }

timeout "$T" wine64 "$setup" /S || fail "the installer exited $? (2: a provider did not register)"
for f in signum-agent.exe signum-util.exe signumksp.dll signumcsp.dll uninstall.exe; do
  [ -f "$dir/$f" ] || fail "$f is not in $dir"
done
[ -f "$WINEPREFIX/drive_c/windows/system32/signumksp.dll" ] || fail "signumksp.dll is not in System32"
agent_path=$(query 'HKLM\Software\Signum' /v AgentPath || true)
grep -qF 'C:\Program Files\Signum\signum-agent.exe' <<<"$agent_path" ||
  fail "no AgentPath in HKLM\Software\Signum (reg query printed: ${agent_path:-nothing})"
cmp -s "$dir/signum-util.exe" "$MINGW_BUILD_DIR/agent-core/signum-util.exe" ||
  fail "the installed signum-util.exe is not the one built"
query "$run_key" /v SignumAgent |
  grep -qF '"C:\Program Files\Signum\signum-agent.exe" --daemon' ||
  fail "no logon start of the agent"
query "$arp_key" | grep -q 'UninstallString.*uninstall.exe' || fail "no Add/Remove Programs entry"
query "$csp_key" | grep -qF 'C:\Program Files\Signum\signumcsp.dll' ||
  fail "the CSP is not registered"
timeout "$T" wine64 "C:\\Program Files\\Signum\\signum-util.exe" --version |
  grep -q '^signum-util ' || fail "the installed signum-util.exe does not run"
echo "installed: $(ls "$dir" | tr '\n' ' ')"
# The x86 providers (issue 20): in x86\ and SysWOW64, the CSP registered in the WOW64 view, where
# the prefix runs 32-bit programs (its SysWOW64 has regsvr32.exe); else left out by design.
wow64=$WINEPREFIX/drive_c/windows/syswow64
csp32_key='HKLM\SOFTWARE\Wow6432Node\Microsoft\Cryptography\Defaults\Provider\'
csp32_key+='Signum Cryptographic Service Provider'
if [ -f "$wow64/regsvr32.exe" ]; then
  x86=1
  for f in x86/signumksp.dll x86/signumcsp.dll; do
    [ -f "$dir/$f" ] || fail "$f is not in $dir"
  done
  cmp -s "$wow64/signumksp.dll" "$MINGW32_BUILD_DIR/windows-ksp/signumksp.dll" ||
    fail "SysWOW64 has not the x86 signumksp.dll"
  query "$csp32_key" | grep -qF 'C:\Program Files\Signum\x86\signumcsp.dll' ||
    fail "the x86 CSP is not registered in the WOW64 view"
  echo "x86 providers: in x86\ and SysWOW64, the CSP registered in the WOW64 view"
else
  x86=0
  [ ! -e "$dir/x86" ] && [ ! -e "$wow64/signumksp.dll" ] ||
    fail "x86 providers installed into a prefix without a 32-bit half"
  echo "NOTE: this prefix runs no 32-bit programs (no SysWOW64\regsvr32.exe): the installer" \
    "left the x86 providers out, as on a Windows without WOW64; their installation is not tested here"
fi
# signum-util providers: the same registration code from the command line. Wine 8's bcrypt
# registration functions are stubs (BCryptRegisterProvider succeeds and writes nothing,
# BCryptUnregisterProvider fails), so only the CSP's registry entry can be checked here.
util='C:\\Program Files\\Signum\\signum-util.exe'
out=$WINE_DIR/providers.out
providers() { timeout "$T" wine64 "$util" providers "$@" >"$out" 2>&1; }
providers status || true
grep -qF 'CSP  registered: Signum Cryptographic Service Provider' "$out" ||
  fail "providers status does not see the CSP: $(cat "$out")"
grep -qF 'KSP  not registered' "$out" || fail "providers status claims a KSP registration Wine cannot make"
if [ "$x86" = 1 ]; then
  grep -qF 'CSP32 registered: Signum Cryptographic Service Provider (WOW64 view, Image Path C:\Program Files\Signum\x86\signumcsp.dll, x86)' "$out" &&
    grep -qF 'KSP32 installed' "$out" && grep -qF '      image: x86' "$out" ||
    fail "providers status does not report the x86 providers: $(cat "$out")"
else
  grep -qF 'CSP32 not registered' "$out" && grep -qF 'KSP32 not installed' "$out" ||
    fail "providers status reports x86 providers that are not there: $(cat "$out")"
fi
echo "providers status:" && tr -d '\r' <"$out" | sed 's/^/  /'
if [ "$x86" = 0 ]; then
  # What status reads of an x86 installation, laid out by hand as the installer and SysWOW64's
  # regsvr32 would (no 32-bit program runs here): the WOW64 view's entry, the images' machine.
  mkdir -p "$dir/x86" "$wow64"
  cp "$MINGW32_BUILD_DIR/windows-csp/signumcsp.dll" "$dir/x86/"
  cp "$MINGW32_BUILD_DIR/windows-ksp/signumksp.dll" "$wow64/"
  timeout "$T" wine64 reg add "$csp32_key" /v 'Image Path' /t REG_SZ \
    /d 'C:\Program Files\Signum\x86\signumcsp.dll' /f >/dev/null 2>&1 || fail "reg add (WOW64 view)"
  providers status || true
  grep -qF 'CSP32 registered: Signum Cryptographic Service Provider (WOW64 view, Image Path C:\Program Files\Signum\x86\signumcsp.dll, x86)' "$out" &&
    grep -qF 'KSP32 installed' "$out" && grep -qF '      image: x86' "$out" ||
    fail "providers status does not read an x86 installation back: $(cat "$out")"
  echo "providers status of a hand-made x86 layout:" && tr -d '\r' <"$out" | grep -A1 '32' | sed 's/^/  /'
  timeout "$T" wine64 reg delete "$csp32_key" /f >/dev/null 2>&1 || fail "reg delete (WOW64 view)"
  rm -r "$dir/x86" "$wow64/signumksp.dll"
fi
providers unregister || true
grep -qF 'OK DllUnregisterServer' "$out" || fail "providers unregister: $(cat "$out")"
query "$csp_key" | grep -q 'Image Path' && fail "the CSP is still registered after providers unregister"
if [ "$x86" = 1 ]; then
  grep -qF 'OK regsvr32 /u (32-bit)' "$out" || fail "providers unregister, x86 CSP: $(cat "$out")"
  query "$csp32_key" | grep -q 'Image Path' && fail "the x86 CSP is still registered after providers unregister"
else
  grep -qF 'CSP32: no x86\signumcsp.dll beside signum-util.exe: nothing to unregister' "$out" ||
    fail "providers unregister, x86 CSP: $(cat "$out")"
fi
providers register || fail "providers register exited $?: $(cat "$out")"
grep -qF 'OK BCryptRegisterProvider' "$out" && grep -qF 'OK DllRegisterServer' "$out" ||
  fail "providers register: $(cat "$out")"
query "$csp_key" | grep -qF 'C:\Program Files\Signum\signumcsp.dll' ||
  fail "providers register did not register the CSP again"
if [ "$x86" = 1 ]; then
  query "$csp32_key" | grep -qF 'C:\Program Files\Signum\x86\signumcsp.dll' ||
    fail "providers register did not register the x86 CSP again: $(cat "$out")"
fi
echo "providers: status, unregister and register through signum-util.exe"

# NSIS's uninstaller copies itself away and returns at once: wait (bounded) for it.
timeout "$T" wine64 "C:\\Program Files\\Signum\\uninstall.exe" /S || fail "the uninstaller exited $?"
wait_steps=100 # 20 s; under emulation (its x86 regsvr32 /u starts slowly) 200 s
[ "$T" = 100 ] || wait_steps=1000
for _ in $(seq 1 "$wait_steps"); do
  [ -e "$dir" ] || break
  sleep 0.2
done
[ ! -e "$dir" ] || fail "$dir is still there after uninstalling: $(ls "$dir")"
query "$run_key" /v SignumAgent | grep -q SignumAgent && fail "the logon start is still there"
query "$arp_key" | grep -q DisplayName && fail "the Add/Remove Programs entry is still there"
query "$csp_key" | grep -q 'Image Path' && fail "the CSP is still registered"
[ -e "$WINEPREFIX/drive_c/windows/system32/signumksp.dll" ] && fail "signumksp.dll is still in System32"
[ -e "$wow64/signumksp.dll" ] && fail "signumksp.dll is still in SysWOW64"
query "$csp32_key" | grep -q 'Image Path' && fail "the x86 CSP is still registered"
query 'HKLM\Software\Signum' | grep -q AgentPath && fail "HKLM\Software\Signum is still there"
echo "uninstalled: files, logon start, Add/Remove Programs entry and CSP registration gone"
