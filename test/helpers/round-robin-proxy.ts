/**
 * A small round-robin HTTP load balancer for tests of several nodes (issue #17): each request goes to
 * the next node in turn; a node whose connection is refused (it is down) is skipped for the next, as a
 * load balancer's health check would, so a request is lost only if it was already with a node that died.
 * Responses are streamed (event streams pass through). Adds X-Forwarded-For, as a real proxy does.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobinProxy {
  url: string;
  port: number;
  /** Which node (index) answered each request, in order. */
  readonly answeredBy: number[];
  close(): Promise<void>;
}

export async function startRoundRobinProxy(nodes: Array<{ host: string; port: number }>, port = 0): Promise<RoundRobinProxy> {
  let next = 0;
  const answeredBy: number[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const start = next;
      next = (next + 1) % nodes.length;
      const attempt = (tried: number) => {
        if (tried >= nodes.length) {
          response.writeHead(502, { 'content-type': 'text/plain' }).end('No node is up\n');
          return;
        }
        const index = (start + tried) % nodes.length;
        const node = nodes[index]!;
        const upstream = http.request(
          {
            host: node.host,
            port: node.port,
            method: request.method,
            path: request.url,
            headers: { ...request.headers, 'x-forwarded-for': request.socket.remoteAddress ?? '127.0.0.1', connection: 'close' },
          },
          (answer) => {
            answeredBy.push(index);
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(response);
            answer.on('error', () => response.destroy());
          },
        );
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          // Refused: nothing reached the node, so the next one may have it. Anything else: the node
          // had the request and died with it; say so, as a load balancer does.
          if (error.code === 'ECONNREFUSED' && !response.headersSent) attempt(tried + 1);
          else if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain' }).end('The node went away\n');
          else response.destroy();
        });
        response.on('close', () => upstream.destroy());
        upstream.end(body);
      };
      attempt(0);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://localhost:${address.port}`,
    port: address.port,
    answeredBy,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
