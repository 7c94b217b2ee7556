# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""hotstandby.postgresql start-time fencing guard (installed by roles/postgres/tasks/fence.yml).

Run by systemd before a PostgreSQL cluster starts (ExecStartPre= of a drop-in of postgresql@<version>-<cluster>):

    /usr/bin/python3 -I /usr/local/lib/hotstandby/fence-check.py /etc/postgresql/<v>/<c>/hotstandby-fence.json

Exit 0 lets the cluster start, exit 1 stops the start. It refuses to start the node AS A PRIMARY when:
  - the fenced marker that failover.yml leaves on a fenced old primary is there, or
  - a peer from the inventory (asked with IDENTIFY_SYSTEM over a replication connection, password from the
    passfile) is on the same system with a higher timeline than this node's last checkpoint: a failover
    happened while this node was away.
A node with standby.signal (or recovery.signal) starts as a standby and is never refused. Messages go to stderr,
that is the journal. Python 3 standard library only (it runs on the managed node, as root or as postgres).

Escape hatch, once, by hand: `systemctl edit postgresql@<v>-<c>` with an empty `ExecStartPre=` line under
[Service] (or remove /etc/systemd/system/postgresql@<v>-<c>.service.d/hotstandby-fence.conf), then
`systemctl daemon-reload`; the next site.yml run puts the guard back.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

PREFIX = 'hotstandby fence: '
DEFAULT_TIMEOUT = 10
# libpq waits at least 2 s whatever connect_timeout says
MIN_CONNECT_TIMEOUT = 2
RETRY_PAUSE = 1.0

# the pg_controldata lines this guard reads, as plugins/module_utils/controldata.py names them
SYSTEM_ID_LINE = 'Database system identifier'
TIMELINE_LINE = "Latest checkpoint's TimeLineID"

# psql errors after which asking again may get an answer (the peer boots, or its network comes up);
# any other error (pg_hba, authentication, TLS) is that peer's final answer
TRANSIENT_ERRORS = ('Connection refused', 'the database system is starting up', 'No route to host',
                    'Network is unreachable', 'timeout expired', 'Connection timed out',
                    'could not translate host name', 'the database system is shutting down',
                    'the database system is in recovery mode')

REJOIN_HINT = 'run site.yml with the updated inventory to rejoin it as a standby'


class FenceError(Exception):
    """A configuration or local problem: the guard cannot judge."""


def parse_controldata(text):
    """(system_identifier, timeline) from pg_controldata's output (C locale), as module_utils.controldata reads them.

    Raises ValueError when either is missing or malformed.
    """
    raw = {}
    for line in text.splitlines():
        name, sep, value = line.partition(':')
        if sep:
            raw[name.strip()] = value.strip()
    if SYSTEM_ID_LINE not in raw or TIMELINE_LINE not in raw:
        raise ValueError('pg_controldata printed no %s (is its output in the C locale?)' % ', '.join(
            n for n in (SYSTEM_ID_LINE, TIMELINE_LINE) if n not in raw))
    system_id, timeline = raw[SYSTEM_ID_LINE], raw[TIMELINE_LINE]
    if not re.match(r'^\d+$', system_id):
        raise ValueError('pg_controldata printed %s: %r, which is not understood' % (SYSTEM_ID_LINE, system_id))
    try:
        timeline = int(timeline)
    except ValueError:
        raise ValueError('pg_controldata printed %s: %r, which is not understood' % (TIMELINE_LINE, timeline))
    return system_id, timeline


def parse_identify_system(text):
    """(system_identifier, timeline) from `psql -XAtq -F '|' -c IDENTIFY_SYSTEM`: systemid|timeline|xlogpos|dbname.

    Raises ValueError for anything else.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValueError('IDENTIFY_SYSTEM returned %d lines: %r' % (len(lines), text[:200]))
    fields = lines[0].strip().split('|')
    if len(fields) < 3 or not re.match(r'^\d+$', fields[0]) or not re.match(r'^\d+$', fields[1]):
        raise ValueError('IDENTIFY_SYSTEM returned %r, which is not understood' % lines[0][:200])
    return fields[0], int(fields[1])


def conninfo_quote(value):
    """A libpq conninfo value, quoted when it needs it."""
    value = str(value)
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")


def peer_conninfo(peer, config, connect_timeout):
    """The replication conninfo for IDENTIFY_SYSTEM on peer: no password in it, the passfile supplies it."""
    pairs = [('host', peer['host']), ('port', peer['port']), ('user', config['user']), ('dbname', 'replication'),
             ('replication', 'true'), ('passfile', config['passfile']), ('connect_timeout', connect_timeout),
             ('sslmode', config.get('sslmode') or 'prefer')]
    if config.get('sslrootcert'):
        pairs.append(('sslrootcert', config['sslrootcert']))
    pairs.append(('application_name', 'hotstandby-fence'))
    return ' '.join('%s=%s' % (k, conninfo_quote(v)) for k, v in pairs)


def clean_env():
    """The environment for psql and pg_controldata: C locale, no PG* variable (no PGPASSWORD, no PGSERVICE)."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith('PG'))
    env['LC_ALL'] = 'C'
    return env


def short_error(text):
    """The gist of a psql error: its first line, without the psql: prefix."""
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    if not lines:
        return 'no output'
    return ' '.join(re.sub(r'^psql:\s*(error:\s*)?', '', lines[0]).split())[:300]


def is_transient(error):
    return any(t.lower() in error.lower() for t in TRANSIENT_ERRORS)


def ask_peer(peer, config, deadline, run=None, clock=time.time, sleep=time.sleep):
    """Ask peer for IDENTIFY_SYSTEM until it answers, gives a final error, or the deadline passes.

    Returns dict(peer=..., system_id=..., timeline=...) or dict(peer=..., error=...).
    """
    run = run or subprocess.run
    error = 'not asked (no time left)'
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return dict(peer=peer, error=error)
        connect_timeout = max(MIN_CONNECT_TIMEOUT, int(remaining))
        argv = [config['psql'], '-X', '-A', '-t', '-q', '-F', '|', '-d', peer_conninfo(peer, config, connect_timeout),
                '-c', 'IDENTIFY_SYSTEM']
        try:
            proc = run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       env=clean_env(), timeout=max(remaining, 0.1) + 1, universal_newlines=True, check=False)
        except subprocess.TimeoutExpired:
            return dict(peer=peer, error='no answer within %ss' % config['timeout'])
        except OSError as e:
            return dict(peer=peer, error='cannot run %s: %s' % (config['psql'], e))
        if proc.returncode == 0:
            try:
                system_id, timeline = parse_identify_system(proc.stdout)
            except ValueError as e:
                return dict(peer=peer, error=str(e))
            return dict(peer=peer, system_id=system_id, timeline=timeline)
        error = short_error(proc.stderr)
        if not is_transient(proc.stderr or ''):
            return dict(peer=peer, error=error)
        if deadline - clock() <= RETRY_PAUSE:
            return dict(peer=peer, error=error)
        sleep(RETRY_PAUSE)


def ask_peers(peers, config, ask=ask_peer, clock=time.time):
    """Ask every peer at once, in threads; stop early once a peer is ahead. Bounded by config['timeout'].

    Returns the answers received (a peer without one by the deadline gets an error entry).
    """
    local = config.get('_local')
    deadline = clock() + config['timeout']
    results = queue.Queue()

    def worker(peer):
        try:
            results.put(ask(peer, config, deadline))
        except Exception as e:  # a bug must not hang the start: report it as that peer's error
            results.put(dict(peer=peer, error='guard error: %s' % e))

    for peer in peers:
        t = threading.Thread(target=worker, args=(peer,))
        t.daemon = True
        t.start()
    answers = []
    while len(answers) < len(peers):
        try:
            answer = results.get(timeout=max(deadline - clock(), 0) + 2)
        except queue.Empty:
            break
        answers.append(answer)
        if local and is_ahead(answer, local):
            # enough to refuse: the others need not be waited for
            return answers
    asked = [a['peer'] for a in answers]
    answers.extend(dict(peer=p, error='no answer within %ss' % config['timeout'])
                   for p in peers if not any(p is q for q in asked))
    return answers


def is_ahead(answer, local):
    """Whether a peer's answer is the same system on a higher timeline than local (system_id, timeline)."""
    return 'error' not in answer and answer['system_id'] == local[0] and answer['timeline'] > local[1]


def peer_name(peer):
    return '%s (%s:%s)' % (peer.get('name') or peer['host'], peer['host'], peer['port'])


def marker_reason(text):
    """What the fenced marker says, in one line (failover.yml writes JSON; any text is accepted)."""
    try:
        data = json.loads(text)
    except ValueError:
        return ' '.join(text.split())[:500] or 'no reason given'
    if not isinstance(data, dict):
        return ' '.join(str(data).split())[:500]
    parts = []
    if data.get('fenced_by'):
        parts.append('fenced by %s' % data['fenced_by'])
    if data.get('at'):
        parts.append('at %s' % data['at'])
    if data.get('new_primary'):
        parts.append('new primary %s' % data['new_primary'])
    if data.get('reason'):
        parts.append(str(data['reason']))
    return ', '.join(parts) or 'no reason given'


def decide_early(cluster, marker_text=None, signal_file=None):
    """The decision before any peer is asked: (exit code, message), or None to go on.

    signal_file: the name of standby.signal / recovery.signal when present; marker_text: the fenced marker's content.
    """
    if signal_file:
        return 0, ('%s has %s: it starts as a standby and cannot be a second primary; starting'
                   % (cluster, signal_file))
    if marker_text is not None:
        return 1, ('refusing to start %s: it is fenced (%s). It was the primary when a standby was promoted; '
                   'make it a standby: %s (it rewinds or clones it, keeping a copy of diverged data)'
                   % (cluster, marker_reason(marker_text), REJOIN_HINT))
    return None


def decide(cluster, local, answers, strict=False):
    """From this node's (system_id, timeline) and the peers' answers: (exit code, message)."""
    system_id, timeline = local
    ahead = [a for a in answers if is_ahead(a, local)]
    if ahead:
        best = max(ahead, key=lambda a: a['timeline'])
        name = best['peer'].get('name') or best['peer']['host']
        return 1, ('refusing to start %s as a primary: %s is on timeline %d of system %s, this node\'s last '
                   'checkpoint is on timeline %d: a failover happened while it was away. Make it a standby: run '
                   'site.yml with the inventory that names %s the primary (it rewinds or clones it, keeping a copy '
                   'of diverged data)' % (cluster, peer_name(best['peer']), best['timeline'], system_id, timeline,
                                          name))
    replies = [a for a in answers if 'error' not in a]
    errors = '; '.join('%s: %s' % (peer_name(a['peer']), a['error']) for a in answers if 'error' in a)
    if replies:
        said = ', '.join('%s timeline %d%s' % (
            peer_name(a['peer']), a['timeline'],
            '' if a['system_id'] == system_id else ' of another system %s' % a['system_id']) for a in replies)
        return 0, ('no peer is ahead of %s (system %s, timeline %d): %s%s; starting'
                   % (cluster, system_id, timeline, said, ('; no answer from ' + errors) if errors else ''))
    if not answers:
        return 0, '%s has no peers to ask (system %s, timeline %d); starting' % (cluster, system_id, timeline)
    if strict:
        return 1, ('refusing to start %s as a primary: no peer answered (%s), so it cannot tell whether a failover '
                   'happened while it was away (postgres_fence_strict is true). Bring a peer up and start it again, '
                   'or set postgres_fence_strict: false and run site.yml, or start it once without the guard '
                   '(systemctl edit %s: an empty ExecStartPre= line)'
                   % (cluster, errors, cluster_unit(cluster)))
    return 0, ('no peer answered, starting %s (system %s, timeline %d) without knowing whether a failover happened '
               'while it was away: %s' % (cluster, system_id, timeline, errors))


def cluster_unit(cluster):
    return 'postgresql@%s.service' % cluster


def load_config(path):
    try:
        with open(path) as f:
            config = json.load(f)
    except (IOError, OSError, ValueError) as e:
        raise FenceError('cannot read the guard\'s configuration %s: %s' % (path, e))
    missing = [k for k in ('cluster', 'data_dir', 'bin_dir', 'psql', 'peers', 'user', 'passfile', 'marker')
               if k not in config]
    if missing:
        raise FenceError('%s lacks %s: run site.yml again' % (path, ', '.join(missing)))
    try:
        config['timeout'] = max(1, int(config.get('timeout', DEFAULT_TIMEOUT)))
    except (TypeError, ValueError):
        config['timeout'] = DEFAULT_TIMEOUT
    config['strict'] = config.get('strict') is True
    return config


def read_marker(path):
    """The fenced marker's content, or None when there is none."""
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        if os.path.lexists(path):
            return 'the marker %s exists but cannot be read' % path
        return None


def local_state(config, run=None):
    """(system_id, timeline) of the local data directory, from pg_controldata."""
    run = run or subprocess.run
    argv = [os.path.join(config['bin_dir'], 'pg_controldata'), config['data_dir']]
    try:
        proc = run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=clean_env(),
                   timeout=30, universal_newlines=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FenceError('cannot run %s: %s' % (argv[0], e))
    if proc.returncode != 0:
        raise FenceError('%s failed: %s' % (' '.join(argv), short_error(proc.stderr)))
    try:
        return parse_controldata(proc.stdout)
    except ValueError as e:
        raise FenceError(str(e))


def check(config, run=None, ask=ask_peer):
    """The whole check: (exit code, message)."""
    cluster = config['cluster']
    signal_file = next((n for n in ('standby.signal', 'recovery.signal')
                        if os.path.exists(os.path.join(config['data_dir'], n))), None)
    early = decide_early(cluster, read_marker(config['marker']), signal_file)
    if early:
        return early
    try:
        local = local_state(config, run)
    except FenceError as e:
        # PostgreSQL itself reports a missing or broken data directory better; no judgement possible here
        if config['strict']:
            return 1, 'refusing to start %s as a primary: %s (postgres_fence_strict is true)' % (cluster, e)
        return 0, 'cannot judge %s (%s); starting' % (cluster, e)
    config['_local'] = local
    return decide(cluster, local, ask_peers(config['peers'], config, ask), config['strict'])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write(PREFIX + 'usage: fence-check.py /etc/postgresql/<version>/<cluster>/hotstandby-fence.json\n')
        return 2
    try:
        config = load_config(argv[0])
        code, message = check(config)
    except FenceError as e:
        code, message = 0, '%s; starting without the guard' % e
    sys.stderr.write(PREFIX + message + '\n')
    sys.stderr.flush()
    return code


if __name__ == '__main__':
    sys.exit(main())
