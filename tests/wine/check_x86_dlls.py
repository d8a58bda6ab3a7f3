"""wine32.dll_exports: the x86 signumksp.dll and signumcsp.dll as Windows will see them, read
with i686-w64-mingw32-objdump (no Wine needed): 32-bit PE images (pei-i386), exporting exactly
the names of their .def files, undecorated (a WINAPI function is _Name@N in the objects, and
ncrypt.dll, advapi32.dll and regsvr32 look up the bare name), and importing no DLL beyond
Windows' own (the runtime is linked statically: nothing to ship beside them in SysWOW64).
Environment: MINGW32_BUILD_DIR, SOURCE_DIR."""

import os
import re
import subprocess
import sys

SYSTEM_DLLS = {"kernel32.dll", "advapi32.dll", "bcrypt.dll", "msvcrt.dll", "ntdll.dll",
               "user32.dll", "crypt32.dll", "ws2_32.dll"}
OBJDUMP = "i686-w64-mingw32-objdump"


def def_exports(path):
    names, in_exports = [], False
    with open(path) as f:
        for line in f:
            line = line.split(";", 1)[0].strip()
            if line == "EXPORTS":
                in_exports = True
            elif in_exports and line:
                names.append(line.split()[0])
    return sorted(names)


def check(dll, def_file):
    problems = []
    if not os.path.isfile(dll):
        return ["%s is missing (the x86 build did not run)" % dll]
    text = subprocess.run([OBJDUMP, "-p", dll], stdout=subprocess.PIPE, check=True,
                          text=True, timeout=60).stdout
    if not re.search(r"file format pei-i386", text):
        problems.append("%s is not a 32-bit PE image" % dll)
    table = text.split("[Ordinal/Name Pointer] Table", 1)
    exported = sorted(re.findall(r"^\s*\[\s*\d+\]\s+(\S+)\s*$", table[1].split("\n\n", 1)[0],
                                 re.M)) if len(table) == 2 else []
    want = def_exports(def_file)
    if exported != want:
        problems.append("%s exports %s, its .def says %s" % (dll, exported, want))
    imports = sorted({m.lower() for m in re.findall(r"DLL Name: (\S+)", text)})
    foreign = [m for m in imports if m not in SYSTEM_DLLS and not m.startswith("api-ms-win-")]
    if foreign:
        problems.append("%s imports %s (not Windows' own)" % (dll, foreign))
    print("%s: %d exports %s; imports %s" % (os.path.basename(dll), len(exported),
                                            "ok" if exported == want else "WRONG", imports))
    return problems


def main():
    build = os.environ["MINGW32_BUILD_DIR"]
    src = os.environ["SOURCE_DIR"]
    problems = check(os.path.join(build, "windows-ksp", "signumksp.dll"),
                     os.path.join(src, "windows-ksp", "signumksp.def"))
    problems += check(os.path.join(build, "windows-csp", "signumcsp.dll"),
                      os.path.join(src, "windows-csp", "signumcsp.def"))
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
