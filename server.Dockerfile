# The server image of the optional containers exercise (PARA_SABER_MAS.md,
# GOING_FURTHER.md): the lab's two programs in an image that holds nothing
# else, FROM scratch, so that it builds with no image registry at all. Both
# binaries are linked statically (make docker-image does it), and
# lines.txt, the input of the clients of compose.yaml, is made by make too.
# (Not the lab's container, where students work: that is
# .devcontainer/lab.Dockerfile, which ./lab-shell builds.)
#
#   make docker-image                runs cargo and builds it: the image
#                                    tcpechod-server, for this machine's
#                                    architecture
#   docker run --rm tcpechod-server  runs the server, as PID 1 of its container
#
# For another architecture (arm64 for Apple silicon, amd64 for a PC), build
# on a machine of that architecture: the binaries are built where the
# image is. One image for both (docker buildx build --platform
# linux/amd64,linux/arm64) needs buildx, both sets of static binaries in
# the context, and a registry to push it to.
FROM scratch
COPY TCPechod TCPecho lines.txt /
ENTRYPOINT ["/TCPechod"]
CMD ["8000"]
