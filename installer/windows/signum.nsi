; Signum for Windows: installs signum-agent.exe, signum-util.exe and the two providers
; (signumksp.dll: the CNG Key Storage Provider; signumcsp.dll: the CryptoAPI CSP) into
; $PROGRAMFILES64\Signum (the KSP into System32 as well: CNG loads a provider registered by
; file name from there), records the agent's path in HKLM\SOFTWARE\Signum\AgentPath (where the
; client library inside a provider finds it), registers the providers with regsvr32, starts the agent at each
; logon of the installing user (HKCU Run), and writes an Add/Remove Programs entry. The
; uninstaller undoes all of it. The x86 providers (KSP32_DLL, CSP32_DLL: for 32-bit hosts such
; as the 32-bit signtool.exe that Office's VBA SIPs need) go into $INSTDIR\x86, the KSP also
; into SysWOW64 (a 32-bit process's System32): CNG's registration is one for both
; architectures and names the image by file name only, so each process loads its own from its
; system directory. The x86 CSP is registered by SysWOW64's 32-bit regsvr32, so its CryptoAPI
; entry lands in the WOW64 view (HKLM\SOFTWARE\WOW6432Node). Both talk to the one 64-bit
; agent. Built by
; installer/windows/CMakeLists.txt:
;   makensis -DVERSION=0.1.0 -DOUTFILE=signum-setup.exe -DAGENT_EXE=... -DUTIL_EXE=...
;            [-DKSP_DLL=...] [-DCSP_DLL=...] [-DKSP32_DLL=... -DCSP32_DLL=...] signum.nsi
; A provider whose DLL is not given is left out (its build target may not exist yet).
; Silent: signum-setup.exe /S [/D=C:\Other\Dir]; uninstall.exe /S.

Unicode true
Target amd64-unicode ; a 64-bit installer: the providers are 64-bit DLLs in a 64-bit system

!ifndef VERSION
  !error "define VERSION"
!endif
!ifndef OUTFILE
  !error "define OUTFILE"
!endif
!ifndef AGENT_EXE
  !error "define AGENT_EXE (signum-agent.exe)"
!endif
!ifndef UTIL_EXE
  !error "define UTIL_EXE (signum-util.exe)"
!endif

!define ARP_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Signum"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUN_VALUE "SignumAgent"

Name "Signum ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\Signum"
RequestExecutionLevel admin ; Program Files and the providers' HKLM registration
SetCompressor /SOLID lzma
ShowInstDetails show
ShowUninstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

!include LogicLib.nsh

; regsvr32 /s on one DLL (FLAG: "" to register, "/u " to unregister); a failure is reported
; and sets the error flag.
!macro Regsvr32 FLAG DLL
  !insertmacro RegsvrIn "$SYSDIR" "${FLAG}" "${DLL}"
!macroend
; The same with the regsvr32.exe of a given system directory (SysWOW64's for an x86 DLL).
!macro RegsvrIn SYS FLAG DLL
  ExecWait '"${SYS}\regsvr32.exe" ${FLAG}/s "${DLL}"' $0
  ${If} $0 != 0
    DetailPrint "regsvr32 ${FLAG}${DLL} failed with exit code $0"
    SetErrors
  ${EndIf}
!macroend
!define SYSWOW64 "$WINDIR\SysWOW64"

Section "Signum"
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  ; A running agent of ours holds its executable open: ask it to exit first (ignore failure).
  ${If} ${FileExists} "$INSTDIR\signum-util.exe"
    ExecWait '"$INSTDIR\signum-util.exe" agent stop'
  ${EndIf}
  File "/oname=signum-agent.exe" "${AGENT_EXE}"
  File "/oname=signum-util.exe" "${UTIL_EXE}"
!ifdef KSP_DLL
  File "/oname=signumksp.dll" "${KSP_DLL}"
  SetOutPath "$SYSDIR"
  File "/oname=signumksp.dll" "${KSP_DLL}"
  SetOutPath "$INSTDIR"
!endif
!ifdef CSP_DLL
  File "/oname=signumcsp.dll" "${CSP_DLL}"
!endif
!ifdef KSP32_DLL
  ; Only where 32-bit programs run (WOW64, whose regsvr32 registers the x86 CSP): a Windows
  ; without it (a Server Core that removed WOW64) has no 32-bit host to serve.
  ${If} ${FileExists} "${SYSWOW64}\regsvr32.exe"
    SetOutPath "$INSTDIR\x86"
    File "/oname=signumksp.dll" "${KSP32_DLL}"
    File "/oname=signumcsp.dll" "${CSP32_DLL}"
    SetOutPath "${SYSWOW64}"
    File "/oname=signumksp.dll" "${KSP32_DLL}"
    SetOutPath "$INSTDIR"
  ${Else}
    DetailPrint "no WOW64 (no ${SYSWOW64}\regsvr32.exe): the x86 providers are left out"
  ${EndIf}
!endif
  WriteUninstaller "$INSTDIR\uninstall.exe"

  WriteRegStr HKLM "Software\Signum" "AgentPath" "$INSTDIR\signum-agent.exe"
  WriteRegStr HKLM "Software\Signum" "InstallDir" "$INSTDIR"

  ClearErrors
!ifdef KSP_DLL
  !insertmacro Regsvr32 "" "$SYSDIR\signumksp.dll"
!endif
!ifdef CSP_DLL
  !insertmacro Regsvr32 "" "$INSTDIR\signumcsp.dll"
!endif
!ifdef KSP32_DLL
  ${If} ${FileExists} "$INSTDIR\x86\signumcsp.dll"
    !insertmacro RegsvrIn "${SYSWOW64}" "" "$INSTDIR\x86\signumcsp.dll"
  ${EndIf}
!endif
  ${If} ${Errors}
    SetErrorLevel 2 ; a provider could not be registered
  ${EndIf}

  ; The agent of the installing user starts at logon (the client library would also start
  ; it on demand; this makes the first signature of a session fast).
  WriteRegStr HKCU "${RUN_KEY}" "${RUN_VALUE}" '"$INSTDIR\signum-agent.exe" --daemon'

  WriteRegStr HKLM "${ARP_KEY}" "DisplayName" "Signum"
  WriteRegStr HKLM "${ARP_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${ARP_KEY}" "Publisher" "Signum"
  WriteRegStr HKLM "${ARP_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${ARP_KEY}" "DisplayIcon" "$INSTDIR\signum-util.exe"
  WriteRegStr HKLM "${ARP_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${ARP_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${ARP_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${ARP_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  ExecWait '"$INSTDIR\signum-util.exe" agent stop'
  ClearErrors
  ${If} ${FileExists} "$SYSDIR\signumksp.dll"
    !insertmacro Regsvr32 "/u " "$SYSDIR\signumksp.dll"
  ${EndIf}
  ${If} ${FileExists} "$INSTDIR\signumcsp.dll"
    !insertmacro Regsvr32 "/u " "$INSTDIR\signumcsp.dll"
  ${EndIf}
  ${If} ${FileExists} "$INSTDIR\x86\signumcsp.dll"
    !insertmacro RegsvrIn "${SYSWOW64}" "/u " "$INSTDIR\x86\signumcsp.dll"
  ${EndIf}
  Delete /REBOOTOK "$SYSDIR\signumksp.dll"
  Delete /REBOOTOK "${SYSWOW64}\signumksp.dll"
  DeleteRegKey HKLM "Software\Signum"
  DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
  Delete "$INSTDIR\signum-agent.exe"
  Delete "$INSTDIR\signum-util.exe"
  Delete "$INSTDIR\signumksp.dll"
  Delete "$INSTDIR\signumcsp.dll"
  Delete "$INSTDIR\x86\signumksp.dll"
  Delete "$INSTDIR\x86\signumcsp.dll"
  RMDir "$INSTDIR\x86"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${ARP_KEY}"
SectionEnd
