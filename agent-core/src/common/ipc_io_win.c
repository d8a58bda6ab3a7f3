/* Blocking I/O on a named pipe opened for overlapped I/O, with a deadline per call. */
#include <windows.h>

#include "ipc.h"

/* One ReadFile/WriteFile: 0 with *done bytes, -1 error or end of pipe, -2 timeout. */
static int transfer(HANDLE h, int writing, void *buf, DWORD len, DWORD *done, ULONGLONG deadline)
{
    OVERLAPPED ov;
    BOOL ok;
    int rc = 0;

    memset(&ov, 0, sizeof(ov));
    *done = 0;
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ov.hEvent)
        return -1;
    ok = writing ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        rc = -1;
    } else if (!ok) {
        DWORD wait = INFINITE;
        if (deadline) {
            ULONGLONG now = GetTickCount64();
            wait = now >= deadline ? 0 : (DWORD)(deadline - now);
        }
        if (WaitForSingleObject(ov.hEvent, wait) != WAIT_OBJECT_0) {
            /* The connection is dropped after a timeout, so what completed late is moot. */
            CancelIoEx(h, &ov);
            GetOverlappedResult(h, &ov, done, TRUE);
            rc = -2;
        }
    }
    if (rc == 0 && (!GetOverlappedResult(h, &ov, done, TRUE) || *done == 0))
        rc = -1;
    CloseHandle(ov.hEvent);
    return rc;
}

static int transfer_all(ipc_fd fd, int writing, uint8_t *p, size_t len, int timeout_ms)
{
    ULONGLONG deadline = timeout_ms < 0 ? 0 : GetTickCount64() + (ULONGLONG)timeout_ms + 1;
    while (len > 0) {
        DWORD chunk = len > 65536 ? 65536 : (DWORD)len, done;
        int rc = transfer((HANDLE)fd, writing, p, chunk, &done, deadline);
        if (rc != 0)
            return rc;
        p += done;
        len -= done;
    }
    return 0;
}

int ipc_write_all(ipc_fd fd, const void *buf, size_t len, int timeout_ms)
{
    return transfer_all(fd, 1, (uint8_t *)buf, len, timeout_ms);
}

int ipc_read_all(ipc_fd fd, void *buf, size_t len, int timeout_ms)
{
    return transfer_all(fd, 0, buf, len, timeout_ms);
}

void ipc_close(ipc_fd fd)
{
    CloseHandle((HANDLE)fd);
}
