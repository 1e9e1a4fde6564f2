/*
 * The job engine (src/godwitd/jobs.c) without a daemon: a struct godwitd
 * with a real store in a temporary directory, fake job kinds whose run
 * functions a test steers, and checks on the store rows and events they
 * leave: done, phases, rate-limited progress events, failure text, cancel
 * (running, finished, unknown), one unfinished job per VM, and the pick-up
 * after a restart (store closed and reopened): resumed by a kind with
 * resume, failed by one without, failed at settle when no kind comes.
 * Also the CLI's progress percentage (src/cli/progress.c): monotonic,
 * smoothed, 100 only when done.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/cli/client.c"
#include "../../src/cli/out.c"
#include "../../src/cli/progress.c"
#include "board_check.h"
#include "godwitd/godwitd.h"
#include "godwitd/jobs.h"

static char dir[64], dbpath[128];

/* What a fake run does, steered by the test (the job's arg). */
struct fake {
    int figures;         /* job_figures calls before the end (last one final) */
    bool wait_cancel;    /* loop until cancelled (or stopping) */
    int ret;             /* returned at the end */
    const char *error;   /* err text with ret */
    atomic_int freed;    /* free_arg ran */
    atomic_bool started; /* run entered */
    char option[32];     /* options.bandwidth seen by run */
};

static atomic_int cancels, resumes;

static int fake_run(struct job *j, char *err, size_t errlen)
{
    struct fake *f = job_arg(j);
    const json_t *bw = json_object_get(job_options(j), "bandwidth");

    atomic_store(&f->started, true);
    if (json_is_string(bw))
        snprintf(f->option, sizeof(f->option), "%s", json_string_value(bw));
    job_phase(j, "transfer");
    for (int i = 0; i < f->figures; i++)
        job_figures(j,
                    json_pack("{s:{s:i,s:i,s:i}}", "ram", "transferred", i * 100, "remaining",
                              (f->figures - i) * 100, "total", f->figures * 100),
                    i == f->figures - 1);
    while (f->wait_cancel && !job_cancelled(j) && !job_stopping(j))
        usleep(2000);
    if (job_cancelled(j))
        return gw_fail(err, errlen, -ECANCELED, "cancelled by the test");
    if (job_stopping(j))
        return gw_fail(err, errlen, -EINTR, "the daemon stops");
    if (f->ret == JOB_PARKED)
        return JOB_PARKED;
    if (f->ret < 0)
        return gw_fail(err, errlen, f->ret, "%s", f->error);
    job_phase(j, "finish");
    return 0;
}

static void fake_cancel(struct job *j)
{
    (void)j;
    atomic_fetch_add(&cancels, 1);
}

static int fake_resume(struct job *j, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    atomic_fetch_add(&resumes, 1);
    job_phase(j, "resumed");
    return 0;
}

static void fake_free(void *arg)
{
    struct fake *f = arg;

    atomic_fetch_add(&f->freed, 1);
}

static const struct job_kind live_out = {.kind = "live",
                                         .direction = "out",
                                         .run = fake_run,
                                         .cancel = fake_cancel,
                                         .resume = fake_resume};
static const struct job_kind cold_in = {.kind = "cold", .direction = "in", .run = fake_run};

/* A kind with operator verbs: run waits for confirm (0) or revert
 * (JOB_REVERTED), as a cold migration's confirm phase does. */
static atomic_int verb_seen; /* 1 confirm, 2 revert */

static int verb_run(struct job *j, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    job_phase(j, "confirm");
    while (!atomic_load(&verb_seen))
        usleep(1000);
    return atomic_load(&verb_seen) == 2 ? JOB_REVERTED : 0;
}

static int verb_control(struct job *j, const char *verb, const json_t *body, char *err,
                        size_t errlen)
{
    (void)j, (void)body;
    if (!strcmp(verb, "confirm"))
        atomic_store(&verb_seen, 1);
    else if (!strcmp(verb, "revert"))
        atomic_store(&verb_seen, 2);
    else
        return gw_fail(err, errlen, -EOPNOTSUPP, "no %s", verb);
    return 0;
}

/* A holdable kind: run loops until held (parks) or cancelled; resume
 * parks again while held, fails when cancelled, else finishes "released". */
static atomic_int hold_runs, hold_resumes;

static int holdable_run(struct job *j, char *err, size_t errlen)
{
    atomic_fetch_add(&hold_runs, 1);
    job_phase(j, "transfer");
    while (!job_held(j) && !job_cancelled(j))
        usleep(1000);
    if (job_cancelled(j))
        return gw_fail(err, errlen, -ECANCELED, "cancelled");
    return JOB_PARKED;
}

static int holdable_resume(struct job *j, char *err, size_t errlen)
{
    atomic_fetch_add(&hold_resumes, 1);
    if (job_cancelled(j))
        return gw_fail(err, errlen, -ECANCELED, "cleaned up after a cancel while held");
    if (job_held(j))
        return JOB_PARKED;
    job_phase(j, job_released(j) ? "released" : "restarted");
    return 0;
}

static const struct job_kind held_out = {.kind = "suspended",
                                         .direction = "out",
                                         .run = holdable_run,
                                         .resume = holdable_resume,
                                         .holdable = true};

/* A kind that keeps a hold of its own (a window, say) and watches
 * job_held(): its own hold must not count, someone else's must, and the
 * release of that one must reach the runner though its own hold stays. */
static atomic_int own_stage;

static int own_run(struct job *j, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    job_hold_own(j, "window", "waits for its window", NULL);
    atomic_store(&own_stage, job_has_own(j, "window") && !job_held(j) ? 1 : -1);
    while (!job_held(j) && !job_cancelled(j))
        usleep(1000);
    atomic_store(&own_stage, 2);
    while (job_held(j) && !job_cancelled(j))
        usleep(1000);
    atomic_store(&own_stage, 3);
    job_lift_own(j, "window", "the window opened");
    return 0;
}

static const struct job_kind own_out = {
    .kind = "live", .direction = "out", .run = own_run, .holdable = true};

static bool wait_stage(int want)
{
    for (int i = 0; i < 5000 && atomic_load(&own_stage) != want; i++)
        usleep(1000);
    return atomic_load(&own_stage) == want;
}

static const struct job_kind cold_out = {
    .kind = "cold", .direction = "out", .run = verb_run, .control = verb_control};

static bool up(struct godwitd *d)
{
    char err[256] = "";

    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->store_lock, NULL);
    d->store = store_open(dbpath, err, sizeof(err));
    if (!d->store || events_init(d, err, sizeof(err)) < 0) {
        printf("     up: %s\n", err);
        return false;
    }
    return true;
}

static void down(struct godwitd *d)
{
    d->stopping = true;
    jobs_fini(d);
    events_fini(d);
    store_close(d->store);
    pthread_mutex_destroy(&d->store_lock);
}

/* Wait (up to 5 s) until no runner is left. */
static bool idle(struct godwitd *d)
{
    for (int i = 0; i < 2500; i++) {
        if (jobs_running(d) == 0)
            return true;
        usleep(2000);
    }
    return false;
}

static bool get(struct godwitd *d, int64_t id, struct store_job *out)
{
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, out);
    godwitd_store_unlock(d);
    return ret == 0;
}

/* Events of job id of this type. */
static unsigned count_events(struct godwitd *d, int64_t id, const char *type)
{
    struct store_event *v = NULL;
    char subject[32];
    size_t n = 0;
    unsigned c = 0;

    snprintf(subject, sizeof(subject), "job/%" PRId64, id);
    godwitd_store_lock(d);
    if (store_event_list_subject(d->store, subject, 0, 1000, &v, &n) == 0)
        for (size_t i = 0; i < n; i++)
            c += !strcmp(v[i].type, type);
    godwitd_store_unlock(d);
    store_event_list_free(v, n);
    return c;
}

static int64_t start(struct godwitd *d, const struct job_kind *k, const char *vm, struct fake *f,
                     int *ret, char *err, size_t errlen)
{
    json_t *opts = json_pack("{s:s}", "bandwidth", "100M");
    int64_t id = 0;

    *ret = jobs_start(d, k, vm, "hostb", "uid 0 (root)", opts, "precheck", f, fake_free, &id, err,
                      errlen);
    json_decref(opts);
    return id;
}

static void test_runner(void)
{
    struct godwitd d;
    struct store_job row;
    struct fake f1 = {.figures = 3}, f2 = {.ret = -EIO, .error = "disk on fire"};
    struct fake f3 = {.wait_cancel = true}, f4 = {0};
    char err[256] = "";
    int64_t id1, id2, id3, id4;
    int ret;

    if (!up(&d))
        return;
    jobs_register(&d, &live_out);
    CHECK(jobs_init(&d, err, sizeof(err)) == 0, "jobs_init on an empty store: %s", err);
    jobs_register(&d, &cold_in);
    jobs_settle(&d);

    id1 = start(&d, &live_out, "web1", &f1, &ret, err, sizeof(err));
    CHECK(ret == 0 && id1 > 0, "jobs_start: job %" PRId64 " (%s)", id1, err);
    CHECK(idle(&d), "the runner ends");
    CHECK(get(&d, id1, &row) && !strcmp(row.status, "done") && !strcmp(row.phase, "finish") &&
              row.ended_ms > 0 && !row.error && !strcmp(row.started_by, "uid 0 (root)"),
          "done: status %s, phase %s", row.status, row.phase);
    CHECK(row.figures && strstr(row.figures, "\"transferred\":200"), "the last figures kept: %s",
          row.figures ? row.figures : "(none)");
    store_job_clear(&row);
    CHECK(!strcmp(f1.option, "100M"), "run saw its options: '%s'", f1.option);
    CHECK(atomic_load(&f1.freed) == 1, "free_arg ran once");
    CHECK_EQ(count_events(&d, id1, "job-created"), 1, "one job-created event");
    CHECK_EQ(count_events(&d, id1, "job-phase"), 2, "two job-phase events (transfer, finish)");
    CHECK_EQ(count_events(&d, id1, "migration-progress"), 2,
             "three figures at once: two progress events (the first, the final)");
    CHECK_EQ(count_events(&d, id1, "job-finished"), 1, "one job-finished event");

    id2 = start(&d, &cold_in, "web2", &f2, &ret, err, sizeof(err));
    CHECK(ret == 0, "a cold in job starts (%s)", err);
    CHECK(idle(&d), "it ends");
    CHECK(get(&d, id2, &row) && !strcmp(row.status, "failed") && row.error &&
              !strcmp(row.error, "disk on fire"),
          "failed with run's text: %s", row.error ? row.error : "(none)");
    store_job_clear(&row);

    id3 = start(&d, &live_out, "web3", &f3, &ret, err, sizeof(err));
    CHECK(ret == 0, "a job that waits for cancel starts");
    for (int i = 0; i < 1000 && !atomic_load(&f3.started); i++)
        usleep(1000);
    id4 = start(&d, &live_out, "web3", &f4, &ret, err, sizeof(err));
    CHECK(ret == -EEXIST && strstr(err, "unfinished"), "a second job on web3: -EEXIST (%s)", err);
    CHECK(atomic_load(&f4.freed) == 0 && id4 == 0, "a job that did not start leaves arg alone");
    CHECK(get(&d, id3, &row) && !strcmp(row.status, "running"), "the job runs");
    store_job_clear(&row);
    CHECK(jobs_cancel(&d, id3, err, sizeof(err)) == 0, "jobs_cancel: 0");
    CHECK(idle(&d), "the cancelled runner ends");
    CHECK(atomic_load(&cancels) == 1, "the kind's cancel ran");
    CHECK(get(&d, id3, &row) && !strcmp(row.status, "cancelled"), "status cancelled (%s)",
          row.status);
    store_job_clear(&row);
    CHECK(jobs_cancel(&d, id3, err, sizeof(err)) == -EINVAL && strstr(err, "cancelled"),
          "cancelling it again: -EINVAL (%s)", err);
    CHECK(jobs_cancel(&d, 9999, err, sizeof(err)) == -ENOENT, "cancelling job 9999: -ENOENT");
    {
        struct fake f5 = {.ret = JOB_PARKED};
        int64_t id5 = start(&d, &live_out, "web5", &f5, &ret, err, sizeof(err));

        CHECK(ret == 0 && idle(&d), "a job that parks ends its thread");
        CHECK(get(&d, id5, &row) && !strcmp(row.status, "running"), "parked: left unfinished (%s)",
              row.status);
        store_job_clear(&row);
        CHECK(jobs_cancel(&d, id5, err, sizeof(err)) == 0 && get(&d, id5, &row) &&
                  !strcmp(row.status, "cancelled"),
              "cancelling a parked job finishes it at once (%s)", row.status);
        store_job_clear(&row);
    }
    {
        const struct job_kind unknown = {.kind = "suspended", .direction = "out", .run = fake_run};

        start(&d, &unknown, "web4", &f4, &ret, err, sizeof(err));
        CHECK(ret == -EINVAL && strstr(err, "not registered"), "an unregistered kind: %s", err);
    }
    {
        /* operator verbs: a kind without them, then confirm and revert */
        struct fake f6 = {.wait_cancel = true}, f7 = {0}, f8 = {0};
        int64_t id6 = start(&d, &live_out, "web6", &f6, &ret, err, sizeof(err));
        for (int i = 0; i < 1000 && !atomic_load(&f6.started); i++)
            usleep(1000);
        CHECK(jobs_control(&d, id6, "confirm", NULL, err, sizeof(err)) == -EOPNOTSUPP,
              "confirm on a kind without verbs: -EOPNOTSUPP (%s)", err);
        jobs_cancel(&d, id6, err, sizeof(err));
        CHECK(idle(&d), "it ends");
        CHECK(jobs_control(&d, id6, "confirm", NULL, err, sizeof(err)) == -EINVAL &&
                  strstr(err, "cancelled"),
              "confirm on a finished job: -EINVAL (%s)", err);
        CHECK(jobs_control(&d, 9999, "revert", NULL, err, sizeof(err)) == -ENOENT,
              "revert of job 9999: -ENOENT");
        jobs_register(&d, &cold_out);
        int64_t id7 = start(&d, &cold_out, "web7", &f7, &ret, err, sizeof(err));
        for (int i = 0; i < 1000; i++) { /* until it waits in its confirm phase */
            bool at = false;
            if (get(&d, id7, &row)) {
                at = !strcmp(row.phase, "confirm");
                store_job_clear(&row);
            }
            if (at)
                break;
            usleep(1000);
        }
        CHECK(jobs_cancel(&d, id7, err, sizeof(err)) == -EINVAL && strstr(err, "confirm"),
              "cancel in the confirm phase: -EINVAL (%s)", err);
        CHECK(ret == 0 && jobs_control(&d, id7, "confirm", NULL, err, sizeof(err)) == 0,
              "confirm handed to the kind (%s)", err);
        CHECK(idle(&d) && get(&d, id7, &row) && !strcmp(row.status, "done"), "confirmed: done (%s)",
              row.status);
        store_job_clear(&row);
        atomic_store(&verb_seen, 0);
        int64_t id8 = start(&d, &cold_out, "web8", &f8, &ret, err, sizeof(err));
        CHECK(ret == 0 && jobs_control(&d, id8, "revert", NULL, err, sizeof(err)) == 0,
              "revert handed to the kind (%s)", err);
        CHECK(idle(&d) && get(&d, id8, &row) && !strcmp(row.status, "reverted") && !row.error,
              "reverted: status reverted, no error (%s)", row.status);
        store_job_clear(&row);
    }
    {
        /* holds: refused ones, then hold -> parked -> release -> resumed */
        struct fake f9 = {0}, f10 = {0};
        int64_t hid = 0;
        CHECK(jobs_hold(&d, id1, "manual", "x", "test", NULL, &hid, err, sizeof(err)) == -EINVAL &&
                  strstr(err, "done"),
              "hold of a finished job: -EINVAL (%s)", err);
        int64_t id9 = start(&d, &live_out, "web9", &f9, &ret, err, sizeof(err));
        CHECK(jobs_hold(&d, id9, "manual", "x", "test", NULL, &hid, err, sizeof(err)) ==
                  -EOPNOTSUPP,
              "hold of a kind that cannot be held: -EOPNOTSUPP (%s)", err);
        jobs_cancel(&d, id9, err, sizeof(err));
        CHECK(idle(&d), "it ends");
        jobs_register(&d, &held_out);
        int64_t id10 = start(&d, &held_out, "web10", &f10, &ret, err, sizeof(err));
        CHECK(ret == 0 &&
                  jobs_hold(&d, id10, "weather", "x", "t", NULL, &hid, err, sizeof(err)) == -EINVAL,
              "an unknown hold type: -EINVAL (%s)", err);
        CHECK(jobs_hold(&d, id10, "manual", "", "t", NULL, &hid, err, sizeof(err)) == -EINVAL,
              "a hold without a reason: -EINVAL (%s)", err);
        CHECK(jobs_hold(&d, id10, "manual", "freeze", "uid 0 (root)", NULL, &hid, err,
                        sizeof(err)) == 0 &&
                  hid > 0,
              "hold: 0, hold %" PRId64 " (%s)", hid, err);
        CHECK(idle(&d) && get(&d, id10, &row) && !strcmp(row.status, "held"),
              "the runner parked, status held (%s)", row.status);
        store_job_clear(&row);
        CHECK(jobs_release(&d, id10, hid + 100, "t", err, sizeof(err)) == -ENOENT,
              "release of a hold it does not have: -ENOENT (%s)", err);
        CHECK(jobs_release(&d, id10, 0, "uid 0 (root)", err, sizeof(err)) == 0, "release: 0 (%s)",
              err);
        CHECK(idle(&d) && get(&d, id10, &row) && !strcmp(row.status, "done") &&
                  !strcmp(row.phase, "released"),
              "released: resume ran and finished (%s, %s)", row.status, row.phase);
        store_job_clear(&row);
        CHECK(jobs_release(&d, id10, 0, "t", err, sizeof(err)) < 0, "nothing left to release");
        /* a held job cancelled: resume runs to clean up, status cancelled */
        struct fake f11 = {0};
        int64_t id11 = start(&d, &held_out, "web11", &f11, &ret, err, sizeof(err));
        jobs_hold(&d, id11, "manual", "wait", "t", NULL, &hid, err, sizeof(err));
        CHECK(idle(&d), "parked");
        int before = atomic_load(&hold_resumes);
        CHECK(jobs_cancel(&d, id11, err, sizeof(err)) == 0, "cancel of a held job: 0 (%s)", err);
        CHECK(idle(&d) && get(&d, id11, &row) && !strcmp(row.status, "cancelled") &&
                  atomic_load(&hold_resumes) == before + 1,
              "its resume cleaned up, status cancelled (%s)", row.status);
        store_job_clear(&row);
    }
    down(&d);
    CHECK(up(&d), "up again");
    {
        /* a job's own hold does not park it; a manual one on top does,
         * and its release reaches the runner */
        struct fake f12 = {0};
        int64_t hid = 0;
        jobs_register(&d, &own_out);
        int64_t id12 = start(&d, &own_out, "web12", &f12, &ret, err, sizeof(err));
        CHECK(ret == 0 && wait_stage(1), "its own hold: job_has_own, not job_held (%d)",
              atomic_load(&own_stage));
        CHECK(get(&d, id12, &row) && !strcmp(row.status, "held"), "status held (%s)", row.status);
        store_job_clear(&row);
        CHECK(jobs_hold(&d, id12, "manual", "freeze", "t", NULL, &hid, err, sizeof(err)) == 0 &&
                  wait_stage(2),
              "a manual hold: job_held (%s)", err);
        CHECK(jobs_release(&d, id12, 0, "t", err, sizeof(err)) == 0 && wait_stage(3),
              "released while its own hold stays: the runner goes on (%s)", err);
        CHECK(idle(&d) && get(&d, id12, &row) && !strcmp(row.status, "done"), "done (%s)",
              row.status);
        store_job_clear(&row);
    }
    down(&d);
}

static void test_restart(void)
{
    struct godwitd d;
    struct store_job row, j = {0};
    struct fake f = {.wait_cancel = true};
    char err[256] = "";
    int64_t id_run, id_cold, id_susp, id_held, id_queued;
    int ret;

    /* a job interrupted by a stopping daemon stays unfinished */
    if (!up(&d))
        return;
    jobs_register(&d, &live_out);
    jobs_init(&d, err, sizeof(err));
    id_run = start(&d, &live_out, "web1", &f, &ret, err, sizeof(err));
    for (int i = 0; i < 1000 && !atomic_load(&f.started); i++)
        usleep(1000);
    CHECK(ret == 0, "a long job starts");
    /* rows as another godwitd would have left them */
    snprintf(j.kind, sizeof(j.kind), "cold");
    snprintf(j.direction, sizeof(j.direction), "in");
    snprintf(j.vm, sizeof(j.vm), "web2");
    snprintf(j.phase, sizeof(j.phase), "transfer");
    snprintf(j.peer, sizeof(j.peer), "hosta");
    godwitd_store_lock(&d);
    ret = store_job_create(d.store, &j, &id_cold);
    snprintf(j.kind, sizeof(j.kind), "suspended");
    snprintf(j.vm, sizeof(j.vm), "web3");
    ret |= store_job_create(d.store, &j, &id_susp);
    snprintf(j.kind, sizeof(j.kind), "live");
    snprintf(j.direction, sizeof(j.direction), "out");
    snprintf(j.vm, sizeof(j.vm), "web4");
    ret |= store_job_create(d.store, &j, &id_held);
    {
        struct store_hold h = {.job_id = id_held};

        snprintf(h.type, sizeof(h.type), "manual");
        snprintf(h.set_by, sizeof(h.set_by), "test");
        snprintf(h.reason, sizeof(h.reason), "waiting for the test");
        ret |= store_hold_add(d.store, &h, NULL);
    }
    snprintf(j.vm, sizeof(j.vm), "web5");
    ret |= store_job_create(d.store, &j, &id_queued);
    godwitd_store_unlock(&d);
    CHECK(ret == 0, "unfinished rows added (%s)", store_errmsg(d.store));
    down(&d);
    CHECK(atomic_load(&f.freed) == 1, "jobs_fini waited for the runner");

    if (!up(&d))
        return;
    CHECK(get(&d, id_run, &row) && !strcmp(row.status, "running"),
          "after a stop the interrupted job is still running (%s)", row.status);
    store_job_clear(&row);
    atomic_store(&resumes, 0);
    CHECK(jobs_init(&d, err, sizeof(err)) == 0, "jobs_init with unfinished jobs: %s", err);
    CHECK(get(&d, id_run, &row) && !strcmp(row.status, "running"), "no kind yet: the job waits");
    store_job_clear(&row);
    jobs_register(&d, &live_out); /* as migrate_init does, after jobs_init */
    jobs_register(&d, &cold_in);
    CHECK(idle(&d), "the resumes end");
    CHECK_EQ(atomic_load(&resumes), 3, "live out: resumed (running, held, queued)");
    CHECK(get(&d, id_run, &row) && !strcmp(row.status, "done") && !strcmp(row.phase, "resumed"),
          "resumed job done in phase %s", row.phase);
    store_job_clear(&row);
    CHECK(get(&d, id_held, &row) && !strcmp(row.status, "done"), "held job resumed too");
    store_job_clear(&row);
    CHECK(get(&d, id_cold, &row) && !strcmp(row.status, "failed") && row.error &&
              !strcmp(row.error, "interrupted: godwitd restarted"),
          "cold in, no resume: failed '%s'", row.error ? row.error : "");
    store_job_clear(&row);
    CHECK(get(&d, id_susp, &row) && !strcmp(row.status, "running"),
          "suspended in: no kind, waits for settle");
    store_job_clear(&row);
    jobs_settle(&d);
    CHECK(get(&d, id_susp, &row) && !strcmp(row.status, "failed") && row.error &&
              strstr(row.error, "restarted"),
          "settled: failed '%s'", row.error ? row.error : "");
    store_job_clear(&row);
    down(&d);
}

static json_t *figs(double t, double r)
{
    return json_pack("{s:{s:f,s:f,s:f}}", "ram", "transferred", t, "remaining", r, "total", 1000.0);
}

static void test_progress(void)
{
    struct cli_progress p;
    const double seq[][2] = {{0, 1000},  {100, 900}, {900, 100}, {1000, 40}, {1000, 300},
                             {1030, 10}, {1040, 5},  {1045, 0},  {1045, 0},  {1045, 0},
                             {1045, 0},  {1045, 0},  {1045, 0},  {1045, 0},  {1045, 0}};
    double last = -1, v;
    bool mono = true, small = true;

    cli_progress_init(&p, stdout, false);
    v = cli_progress_percent(&p, NULL, false);
    CHECK(v < 0, "no figures: no percentage");
    for (size_t i = 0; i < GW_ARRAY_SIZE(seq); i++) {
        json_t *f = figs(seq[i][0], seq[i][1]);

        v = cli_progress_percent(&p, f, false);
        json_decref(f);
        if (v < last)
            mono = false;
        if (last >= 0 && v - last > 25.0 + 1e-9)
            small = false;
        if (v > 99)
            mono = false;
        last = v;
    }
    CHECK(mono, "the percentage never goes back and stays below 100 (last %.1f)", last);
    CHECK(small, "a leap (10%% to 90%%) is spread over several polls");
    CHECK(last > 90, "it converges (%.1f)", last);
    CHECK(cli_progress_percent(&p, NULL, true) == 100, "100 once done");
}

/* The display: the live line and the phase lines, into a memory stream. */
static void test_display(void)
{
    json_t *job =
        json_pack("{s:i, s:s, s:s, s:I, s:o, s:{s:i, s:{s:I, s:I, s:I, s:f, s:i, s:i, s:i}}}", "id",
                  12, "phase", "transfer", "status", "running", "started",
                  (json_int_t)(now_ms() - 12400), "ended", json_null(), "figures",
                  "expected-downtime", 41, "ram", "transferred", (json_int_t)(2048ll << 20),
                  "total", (json_int_t)(4096ll << 20), "remaining", (json_int_t)(2048ll << 20),
                  "mbps", 940.8, "dirty-pages-rate", 800, "page-size", 4096, "dirty-sync-count", 2);
    struct cli_progress p;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f || !job)
        return;
    cli_progress_init(&p, f, true);
    cli_progress_show(&p, job);
    fflush(f);
    CHECK(!strncmp(buf, "\r\033[Ktransfer  [", 15) && strstr(buf, "2 GiB sent, RAM 4 GiB") &&
              strstr(buf, "117.6 MB/s") && strstr(buf, "dirty 3.1 MiB/s") &&
              strstr(buf, "pass 2") && strstr(buf, "downtime ~41 ms") && strstr(buf, "12.4"),
          "the live line: %s", buf + 4);
    CHECK(strstr(buf, "]  12%") != NULL, "a first 50%% shows as a step towards it (12%%)");
    {
        char line[PROGRESS_LINE];

        progress_line(&p, job, line, sizeof(line), 60);
        CHECK(strlen(line) <= 60 && strstr(line, "4 GiB") && !strstr(line, "pass"),
              "a 60-column terminal keeps the first fields: %s", line);
    }
    cli_progress_clear(&p);
    fclose(f);
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    if (!f)
        return;
    cli_progress_init(&p, f, false);
    cli_progress_show(&p, job);
    cli_progress_show(&p, job);
    json_object_set_new(job, "phase", json_string("complete"));
    json_object_set_new(job, "status", json_string("done"));
    cli_progress_show(&p, job);
    fclose(f);
    CHECK(buf && !strcmp(buf, "job 12: transfer\njob 12: complete, done\n"),
          "without a terminal: a line per change: %s", buf ? buf : "");
    free(buf);

    /* a live job held mid pre-copy says so in words */
    buf = NULL;
    f = open_memstream(&buf, &len);
    if (!f)
        return;
    json_object_set_new(job, "phase", json_string("transfer"));
    json_object_set_new(job, "status", json_string("held"));
    json_object_set_new(json_object_get(job, "figures"), "status",
                        json_string("x-godwit-precopy-paused"));
    cli_progress_init(&p, f, true);
    cli_progress_show(&p, job);
    fflush(f);
    CHECK(strstr(buf, "transfer  (held, pre-copy paused) [") != NULL, "held, paused: %s", buf + 4);
    fclose(f);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    if (!f)
        return;
    cli_progress_init(&p, f, false);
    cli_progress_show(&p, job);
    json_object_set_new(json_object_get(job, "figures"), "status",
                        json_string("x-godwit-held-converged"));
    cli_progress_show(&p, job);
    fclose(f);
    CHECK(buf && !strcmp(buf, "job 12: transfer, held, pre-copy paused\n"
                              "job 12: transfer, held, held-converged: destination kept in sync\n"),
          "without a terminal: the stream's state changes are lines too: %s", buf ? buf : "");
    CHECK(cli_progress_stream_words(json_object_get(job, "figures")) &&
              !cli_progress_stream_words(NULL),
          "stream words only for the held states");
    free(buf);
    json_decref(job);
}

/* Disks in the live stream: the percentage weighs them by the bytes they
 * move, the line says what went and what is left, mirroring in words. */
static void test_disk(void)
{
    /* RAM 100 MiB all sent; a 4 GiB disk, 300 MiB allocated, half gone */
    json_t *fig =
        json_pack("{s:s,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:{s:I},s:b}", "status", "active", "ram",
                  "transferred", (json_int_t)(100ll << 20), "remaining", (json_int_t)0, "total",
                  (json_int_t)(100ll << 20), "disk", "transferred", (json_int_t)(150ll << 20),
                  "remaining", (json_int_t)(2048ll << 20), "total", (json_int_t)(4096ll << 20),
                  "plan", "disk_bytes", (json_int_t)(300ll << 20), "x-godwit-mirror", 0);
    json_t *job = json_pack("{s:i,s:s,s:s,s:I,s:O}", "id", 7, "phase", "transfer", "status",
                            "running", "started", (json_int_t)(now_ms() - 3000), "figures", fig);
    struct cli_progress p;
    char line[PROGRESS_LINE];
    double v = -1;

    cli_progress_init(&p, stdout, false);
    for (int i = 0; i < 40; i++)
        v = cli_progress_percent(&p, fig, false);
    /* (100 + 300 x 0.5) / (100 + 300) = 62.5 % */
    CHECK(v > 62 && v < 63, "RAM done, the disk half way: %.1f%%, want 62.5", v);
    progress_line(&p, job, line, sizeof(line), 200);
    CHECK(strstr(line, "disk 150 MiB sent, 2 GiB left") != NULL, "the disk's field: %s", line);
    CHECK(!cli_progress_stream_words(fig), "no words while the disk is not mirrored");
    json_object_set_new(fig, "x-godwit-mirror", json_true());
    CHECK(cli_progress_stream_words(fig) && !strcmp(cli_progress_stream_words(fig), "mirroring"),
          "mirroring in words");
    progress_line(&p, job, line, sizeof(line), 200);
    CHECK(strstr(line, "transfer  (mirroring) [") != NULL, "the live line says so: %s", line);
    json_decref(job);
    json_decref(fig);
}

static void test_who(void)
{
    struct api_request req;
    char who[STORE_WHO_MAX];

    memset(&req, 0, sizeof(req));
    req.peer.transport = API_TRANSPORT_UNIX;
    req.peer.has_cred = true;
    req.peer.uid = 0;
    jobs_who(&req, who, sizeof(who));
    CHECK(!strcmp(who, "uid 0 (root)"), "a local root request: %s", who);
    req.peer.uid = 4000321;
    jobs_who(&req, who, sizeof(who));
    CHECK(!strcmp(who, "uid 4000321"), "a uid without a name: %s", who);
    req.peer.has_cred = false;
    jobs_who(&req, who, sizeof(who));
    CHECK(!strcmp(who, "unknown"), "no credentials: %s", who);
    req.peer.transport = API_TRANSPORT_TLS;
    jobs_who(&req, who, sizeof(who));
    CHECK(!strcmp(who, "peer"), "a peer host: %s", who);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/godwit-jobs-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dbpath, sizeof(dbpath), "%s/godwit.db", dir);
    gw_log_set_prog("test_jobs");
    test_runner();
    unlink(dbpath);
    test_restart();
    test_progress();
    test_display();
    test_disk();
    test_who();
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            printf("     could not remove %s\n", dir);
    }
    return board_check_done();
}
