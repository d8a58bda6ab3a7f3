/* signum-util enroll (service account, machine). */
#ifndef UTIL_ENROLL_H
#define UTIL_ENROLL_H

int util_cmd_enroll(int argc, char **argv);

#endif
