/* SPDX-License-Identifier: ISC */
/*
 * signals.c - SIGHUP for autoturn-milter: reload, never stop.
 *
 * libmilter blocks SIGHUP, SIGTERM and SIGINT in every thread and waits
 * for them in a thread of its own with sigwait(3); on any of the three it
 * stops the milter (smfi_main returns). A milter that stops on SIGHUP
 * leaves the MTA answering 4xx to all inbound mail (milter_default_action
 * = tempfail) until someone starts it again, and SIGHUP is what "systemctl
 * reload", log rotation scripts and habit send. libmilter has no hook for
 * this, so this file defines sigwait() for the milter's process: the
 * dynamic linker resolves libmilter's call to the executable's definition
 * before libc's. It waits with sigwaitinfo(2), runs the reload for SIGHUP
 * and waits again, and hands every other signal to libmilter unchanged.
 * Nothing else in the milter calls sigwait(). The reload runs in
 * libmilter's signal thread, an ordinary thread (not a signal handler),
 * while the callback threads go on.
 *
 * Linked into autoturn-milter only (not into milter_core), so that no
 * other program gets this sigwait().
 */
#include <errno.h>
#include <signal.h>

#include "milter.h"

static void (*reload_fn)(void);

void
signals_on_reload(void (*fn)(void))
{
    reload_fn = fn;
}

int
sigwait(const sigset_t *set, int *sig)
{
    int s;

    for (;;) {
        if ((s = sigwaitinfo(set, NULL)) < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (s == SIGHUP && reload_fn != NULL) {
            reload_fn();
            continue;
        }
        *sig = s;
        return 0;
    }
}
