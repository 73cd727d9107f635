# The lab's two programs in an image that holds nothing else: FROM scratch,
# so that it builds with no image registry at all. Both binaries are linked
# statically (make docker-image does it), and lines.txt, the input of the
# clients of compose.yaml, is made by make too.
#
#   make docker-image         builds it (the image tcpechod)
#   docker run --rm tcpechod  runs the server, as PID 1 of its container
FROM scratch
COPY TCPechod TCPecho lines.txt /
ENTRYPOINT ["/TCPechod"]
CMD ["8000"]
