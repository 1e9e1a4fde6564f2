/*
 * Disk image locking on real files: QEMU 7.2's byte layout (100 + p used,
 * 200 + p denied), writers excluding writers and readers, readers sharing,
 * nothing left locked after a refusal, release and close dropping the
 * locks, and the holder named: another description in this process, a
 * forked process holding OFD locks (found through /proc/PID/fdinfo), a
 * process holding a classic POSIX lock (F_OFD_GETLK names it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "board_check.h"
#include "common/image_lock.h"

static char dir[] = "/tmp/godwit-lock-XXXXXX";
static char img[64];

static int open_img(int flags)
{
    int fd = open(img, flags | O_CLOEXEC);

    if (fd < 0) {
        perror(img);
        exit(2);
    }
    return fd;
}

/* Whether some description other than fd's holds byte off. */
static bool held(int fd, off_t off)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};

    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* The bytes 100..104 and 200..204 others hold, as a string of 0/1. */
static const char *layout(int probe)
{
    static char s[11];

    for (int i = 0; i < 5; i++) {
        s[i] = held(probe, 100 + i) ? '1' : '0';
        s[5 + i] = held(probe, 200 + i) ? '1' : '0';
    }
    return s;
}

static void test_modes(void)
{
    enum image_lock_mode m = IMAGE_LOCK_OFF;

    CHECK(image_lock_parse_mode("auto", &m) == 0 && m == IMAGE_LOCK_AUTO, "auto");
    CHECK(image_lock_parse_mode("on", &m) == 0 && m == IMAGE_LOCK_ON, "on");
    CHECK(image_lock_parse_mode("off", &m) == 0 && m == IMAGE_LOCK_OFF, "off");
    CHECK(image_lock_parse_mode("yes", &m) == -EINVAL, "yes: refused (QEMU's OnOffAuto)");
}

static void test_one_process(void)
{
    int a = open_img(O_RDWR), b = open_img(O_RDWR), c = open_img(O_RDONLY);
    char err[300];

    CHECK(image_lock_acquire(a, true, img, err, sizeof(err)) == 0, "writer A");
    CHECK(!strcmp(layout(c), "1100001000"), "writer holds 100, 101, 201 (QEMU 7.2's): %s",
          layout(c));
    CHECK(image_lock_acquire(b, true, img, err, sizeof(err)) == -EAGAIN, "writer B refused");
    CHECK(strstr(err, "Failed to get \"write\" lock") && strstr(err, img), "QEMU's words: %s", err);
    CHECK(strstr(err, "this process already uses the image"), "names this process: %s", err);
    CHECK(image_lock_acquire(c, false, img, err, sizeof(err)) == -EAGAIN, "reader C refused");
    CHECK(strstr(err, "Failed to get shared \"write\" lock"), "shared: %s", err);
    image_lock_release(a);
    CHECK(!strcmp(layout(c), "0000000000"), "released; refused B and C left nothing: %s",
          layout(c));

    CHECK(image_lock_acquire(a, false, img, err, sizeof(err)) == 0, "reader A");
    CHECK(!strcmp(layout(b), "1000001000"), "reader holds 100, 201: %s", layout(b));
    CHECK(image_lock_acquire(c, false, img, err, sizeof(err)) == 0, "reader C shares");
    CHECK(image_lock_acquire(b, true, img, err, sizeof(err)) == -EAGAIN &&
              strstr(err, "Failed to get \"write\" lock"),
          "writer B refused by readers: %s", err);
    image_lock_release(a);
    CHECK(image_lock_acquire(b, true, img, err, sizeof(err)) == -EAGAIN, "still C");
    close(c); /* closing the description drops its locks */
    CHECK(image_lock_acquire(b, true, img, err, sizeof(err)) == 0, "writer B after C closed");
    image_lock_release(b);
    CHECK(image_lock_acquire(a, true, img, err, sizeof(err)) == 0, "writer A after B released");
    close(a);
    close(b);
}

/* A child holding the image (ofd: image_lock_acquire as a writer; else a
 * POSIX write lock on byte 201) until the parent closes its pipe. */
static pid_t holder(bool ofd, int *release)
{
    int up[2], down[2];
    char c = 0;
    pid_t pid;

    if (pipe(up) < 0 || pipe(down) < 0)
        exit(2);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char err[300];
        int fd = open_img(O_RDWR), ok;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 201, .l_len = 1};

        close(up[0]);
        close(down[1]);
        ok = ofd ? image_lock_acquire(fd, true, img, err, sizeof(err)) == 0
                 : fcntl(fd, F_SETLK, &fl) == 0;
        c = ok ? 'y' : 'n';
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    CHECK(read(up[0], &c, 1) == 1 && c == 'y', "child %d holds the image (%s)", (int)pid,
          ofd ? "OFD" : "POSIX");
    close(up[0]);
    *release = down[1];
    return pid;
}

static void release_holder(pid_t pid, int release)
{
    int status;

    close(release);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %d exited", (int)pid);
}

static void test_two_processes(void)
{
    int fd = open_img(O_RDWR), probe, release;
    char err[300], name[64], want[200];
    pid_t pid;

    pid = holder(true, &release);
    CHECK(image_lock_acquire(fd, true, img, err, sizeof(err)) == -EAGAIN, "refused (OFD holder)");
    snprintf(want, sizeof(want), "process %d (test_image_lock) is using the image [%s]", (int)pid,
             img);
    CHECK(strstr(err, want) != NULL, "names the holder: %s", err);
    CHECK(image_lock_holder(fd, 201, name, sizeof(name)) == pid && !strcmp(name, "test_image_lock"),
          "image_lock_holder: %s", name);
    CHECK(image_lock_holder(fd, 202, name, sizeof(name)) == 0, "nobody on byte 202");
    CHECK(image_lock_acquire(fd, false, img, err, sizeof(err)) == -EAGAIN &&
              strstr(err, "shared \"write\"") && strstr(err, want),
          "reader refused, holder named: %s", err);
    release_holder(pid, release);
    CHECK(image_lock_acquire(fd, true, img, err, sizeof(err)) == 0, "the holder exited: taken");
    image_lock_release(fd);

    pid = holder(false, &release); /* a POSIX write lock on 201: F_OFD_GETLK names its pid */
    CHECK(image_lock_acquire(fd, true, img, err, sizeof(err)) == -EAGAIN, "refused (POSIX holder)");
    snprintf(want, sizeof(want), "Failed to lock byte 201: process %d (test_image_lock)", (int)pid);
    CHECK(strstr(err, want) != NULL, "%s", err);
    probe = open_img(O_RDONLY);
    CHECK(!strcmp(layout(probe), "0000001000"), "only the child's byte 201 is held: %s",
          layout(probe));
    release_holder(pid, release);
    close(probe);
    close(fd);
}

int main(void)
{
    int fd;

    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir))
        return 2;
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
        return 2;
    close(fd);
    test_modes();
    test_one_process();
    test_two_processes();
    unlink(img);
    rmdir(dir);
    return board_check_done();
}
