"""Who may talk to the server, and how much they may send: an ASGI middleware in front of every route.

Threat model (docs/reliability.md): the server listens on loopback by default, where every local process and every
web page the local browser opens can reach it. A page on another site can send "simple" requests (a form's
multipart POST, no preflight) and, by DNS rebinding (its own name resolving to 127.0.0.1), even read the answers.
So, before a route runs:

- Host: the Host header must name an IP address, localhost, this machine or an `allow_hosts` name (a rebinding
  page's requests carry its own domain): 403 otherwise.
- Origin: a request a browser marks with another origin than the server's own (or an `allow_origins` one) is
  refused with 403, whatever its method or content type.
- Token: with `token` set, every route but the page, its static files and /v1/health needs
  `Authorization: Bearer TOKEN`, or the cookie the page gets from `/?token=TOKEN` (SameSite=Strict, HttpOnly): 401.
- Size: the body may hold at most `limit(path)` bytes: a Content-Length above it is refused before anything is
  read, and a body streamed without one is counted and cut off as soon as it passes the limit (413 naming both).
"""
import hmac
import ipaddress
import json
import socket
import urllib.parse
from collections.abc import Callable

from starlette.exceptions import HTTPException

COOKIE = 'magnet_token'
PUBLIC = ('/', '/v1/health')  # and /static/...: the page loads before it can present a token


class TooLarge(HTTPException):
  """A request body over its limit (413): raised from the counted body stream, so that FastAPI's own body parsing
  lets it through as it is."""

  def __init__(self, limit: int, size: int, exact: bool):
    size_text = f'{size} bytes' if exact else f'more than {size - 1} bytes'
    super().__init__(413, f'the request body is {size_text}, at most {limit} bytes ({limit / 2 ** 20:.3g} MiB) '
                          f'here')


def host_names(extra: tuple[str, ...]) -> frozenset[str]:
  """The Host names (without port) accepted besides IP literals: localhost, this machine's names, `extra`."""
  names = {'localhost', socket.gethostname(), socket.getfqdn(), *extra}
  return frozenset(name.lower().rstrip('.') for name in names if name)


def _host_name(host: str) -> str:
  """A Host header's name without its port ('[::1]:8000' -> '::1')."""
  if host.startswith('['):
    return host[1:].partition(']')[0]
  return host.rpartition(':')[0] if host.count(':') == 1 else host


def _is_ip(name: str) -> bool:
  try:
    ipaddress.ip_address(name)
    return True
  except ValueError:
    return False


class Guard:
  """The checks of the module docstring, as ASGI middleware around `app`.

  Args:
    limit: the body limit in bytes for a request path.
    hosts: `host_names(...)`; '*' among them accepts any Host.
    origins: web origins allowed besides the server's own (scheme://host[:port]).
    token: the bearer token, or None for none.
  """

  def __init__(self, app, limit: Callable[[str], int], hosts: frozenset[str], origins: tuple[str, ...] = (),
               token: str | None = None):
    self.app, self.limit, self.hosts, self.origins, self.token = app, limit, hosts, frozenset(origins), token

  async def __call__(self, scope, receive, send):
    if scope['type'] not in ('http', 'websocket'):
      return await self.app(scope, receive, send)
    # A browser lets any page open a WebSocket to any host: the live stream gets the same Host, Origin and token
    # checks as the HTTP routes, refused before the handshake is accepted.
    refuse = _refuse if scope['type'] == 'http' else _refuse_websocket(receive)
    headers = {name.decode('latin-1').lower(): value.decode('latin-1') for name, value in scope['headers']}
    host = headers.get('host', '')
    name = _host_name(host).lower().rstrip('.')
    if '*' not in self.hosts and not _is_ip(name) and name not in self.hosts:
      return await refuse(send, 403, f'Host {host!r} is not a name this server answers to (serve --allow-host)')
    origin = headers.get('origin')
    scheme = {'ws': 'http', 'wss': 'https'}.get(scope['scheme'], scope['scheme'])
    if origin is not None and origin != f'{scheme}://{host}' and origin not in self.origins:
      return await refuse(send, 403, f'cross-origin request from {origin!r} refused (serve --allow-origin)')
    path = scope['path']
    authenticated = self.token is not None and self._token_given(scope, headers)
    scope['magnet_authenticated'] = authenticated
    if self.token is not None and not authenticated and not (path in PUBLIC or path.startswith('/static/')):
      return await refuse(send, 401, 'this server needs a token: Authorization: Bearer TOKEN (serve --token)',
                          [(b'www-authenticate', b'Bearer')])
    if scope['type'] == 'websocket':
      return await self.app(scope, receive, send)
    limit = self.limit(path)
    declared = headers.get('content-length')
    if declared is not None and not declared.isdigit():
      return await _refuse(send, 400, f'bad Content-Length {declared!r}')
    if declared is not None and int(declared) > limit:  # refused before a byte of the body is read
      return await _refuse(send, 413, TooLarge(limit, int(declared), True).detail)
    received = 0

    async def counted():
      nonlocal received
      message = await receive()
      if message['type'] == 'http.request':
        received += len(message.get('body', b''))
        if received > limit:
          raise TooLarge(limit, received, False)
      return message

    await self.app(scope, counted, self._with_cookie(scope, send) if authenticated else send)

  def _token_given(self, scope, headers: dict) -> bool:
    scheme, _, given = headers.get('authorization', '').partition(' ')
    candidates = [given] if scheme.lower() == 'bearer' else []
    for part in headers.get('cookie', '').split(';'):
      key, _, value = part.strip().partition('=')
      if key == COOKIE:
        candidates.append(urllib.parse.unquote(value))
    query = urllib.parse.parse_qs(scope.get('query_string', b'').decode('latin-1'))
    if scope['path'] == '/':
      candidates.extend(query.get('token', []))
    return any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)

  def _with_cookie(self, scope, send):
    """The page, opened with ?token=, keeps the token in a same-site cookie for its own API calls."""
    if scope['path'] != '/':
      return send

    async def send_with_cookie(message):
      if message['type'] == 'http.response.start':
        cookie = f'{COOKIE}={urllib.parse.quote(self.token)}; Path=/; HttpOnly; SameSite=Strict'
        message = {**message, 'headers': [*message.get('headers', []), (b'set-cookie', cookie.encode('latin-1'))]}
      await send(message)
    return send_with_cookie


async def _refuse(send, status: int, message: str, headers: list | None = None) -> None:
  body = json.dumps({'error': message}).encode()
  await send({'type': 'http.response.start', 'status': status,
              'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode()),
                          *(headers or [])]})
  await send({'type': 'http.response.body', 'body': body})


def _refuse_websocket(receive):
  """A refusal of a WebSocket handshake: the close before accepting it, which the server answers with HTTP 403."""
  async def refuse(send, status: int, message: str, headers: list | None = None) -> None:
    del status, headers  # the ASGI close before accept carries neither
    await receive()  # websocket.connect
    await send({'type': 'websocket.close', 'code': 1008, 'reason': message[:120]})
  return refuse
