/*
 * forkechod: the baseline of the benchmark. A minimal, correct C fork
 * echo server, written the way the lab's TCPechod should have been:
 * sigaction with a reaper that loops waitpid(WNOHANG) and keeps errno,
 * accept retried on EINTR, every short write completed, the child closing
 * msock and the parent closing asock. No logging, no options.
 *
 *   cc -O2 -o forkechod forkechod.c && ./forkechod PORT
 *
 * PORT 0 picks a free port; the port is printed on stderr as
 * "listening on 127.0.0.1:PORT". SIGTERM ends it (default action).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUFFER_SIZE (64 * 1024)

static void reaper(int sig)
{
    int saved_errno = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved_errno;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void echo(int sock)
{
    static char buf[BUFFER_SIZE];
    for (;;) {
        ssize_t n = read(sock, buf, sizeof buf);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (write_all(sock, buf, (size_t)n) < 0)
            return;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: forkechod PORT\n");
        return 2;
    }
    int msock = socket(AF_INET, SOCK_STREAM, 0);
    if (msock < 0) {
        perror("socket");
        return 1;
    }
    int on = 1;
    setsockopt(msock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    if (bind(msock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    if (listen(msock, 128) < 0) {
        perror("listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(msock, (struct sockaddr *)&addr, &len);
    fprintf(stderr, "listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reaper;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    for (;;) {
        int asock = accept(msock, NULL, NULL);
        if (asock < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(msock);
            echo(asock);
            close(asock);
            _exit(0);
        }
        if (pid < 0)
            perror("fork");
        close(asock);
    }
}
