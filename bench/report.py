"""Turn the raw measurements of scripts/bench into results.md and results.json.

    python3 bench/report.py RESULTS_DIR

Reads RESULTS_DIR/raw.tsv (metric, round, seconds, note), RESULTS_DIR/meta.tsv
(key, value) and the profile_tasks output in RESULTS_DIR/logs/*.log; writes
RESULTS_DIR/results.md and RESULTS_DIR/results.json and prints the table.
Exits 1 when a re-run reported changes (the bench must fail then).
"""
import glob
import json
import os
import re
import statistics
import sys


def median(xs):
    return statistics.median(xs) if xs else None


def le(x, limit):
    return x is not None and x <= limit


def fmt(x, unit='s'):
    return '-' if x is None else '%.1f %s' % (x, unit) if unit else '%.2f' % x


def load(results):
    raw = {}
    with open(os.path.join(results, 'raw.tsv')) as f:
        for line in f:
            metric, rnd, secs, note = (line.rstrip('\n').split('\t') + [''])[:4]
            raw.setdefault(metric, {})[int(rnd)] = dict(seconds=float(secs), note=note)
    meta = {}
    with open(os.path.join(results, 'meta.tsv')) as f:
        for line in f:
            k, v = line.rstrip('\n').split('\t', 1)
            meta[k] = v
    return raw, meta


def secs(raw, metric):
    return [v['seconds'] for dummy, v in sorted(raw.get(metric, {}).items())]


def paired(raw, a, b, fn):
    """fn(a_seconds, b_seconds) per round where both exist."""
    out = []
    for r in sorted(raw.get(a, {})):
        if r in raw.get(b, {}):
            out.append(fn(raw[a][r]['seconds'], raw[b][r]['seconds']))
    return out


PROFILE_RE = re.compile(r'^(.*?) -+ (\d+\.\d+)s$')


def profile(path):
    """profile_tasks summary of one log: [(task, seconds)] in the order printed (slowest first)."""
    rows, on = [], False
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('====='):
                on = True
                continue
            if on:
                m = PROFILE_RE.match(line)
                if m:
                    rows.append((m.group(1).strip(), float(m.group(2))))
    return rows


def profile_summary(results, prefix, top=12):
    """Median per task over the runs; a task name that runs in several plays (primary, standbys) is summed,
    its occurrences are listed (slowest first, from the first run)."""
    per_task, split = {}, {}
    files = sorted(glob.glob(os.path.join(results, 'logs', prefix + '-r*.log')))
    totals = []
    for p in files:
        rows = profile(p)
        if not rows:
            continue
        totals.append(sum(s for dummy, s in rows))
        seen = {}
        for task, s in rows:
            seen.setdefault(task, []).append(s)
        for task, ss in seen.items():
            per_task.setdefault(task, []).append(sum(ss))
            split.setdefault(task, ss)
    med = sorted(((median(v), t) for t, v in per_task.items()), reverse=True)
    return dict(runs=len(totals), total_s=median(totals), tasks=len(per_task),
                top=[dict(task=t, median_s=round(s, 2), occurrences=len(split[t]),
                          first_run_split_s=[round(x, 2) for x in split[t]]) for s, t in med[:top]],
                facts_s=round(median(per_task['Gathering Facts']), 2) if 'Gathering Facts' in per_task else 0.0)


def main():
    results = sys.argv[1]
    raw, meta = load(results)
    rows, data = [], {}

    def add(key, name, num, den, ratio, target, ok, note='', metrics=()):
        failed = sum(len(raw.get(m + '_failed', {})) for m in metrics)
        if failed:
            ok = False
            note = ('**%d failed run(s)**, see logs; ' % failed) + note
        data[key] = {'name': name, 'a_median_s': num, 'b_median_s': den, 'ratio': ratio,
                     'target': target, 'pass': ok, 'note': note, 'failed_runs': failed}
        rows.append('| %s | %s | %s | **%s** | %s | %s | %s |' % (
            name, fmt(num), fmt(den), fmt(ratio, None) if ratio is not None else '-', target,
            '-' if ok is None else ('pass' if ok else '**FAIL**'), note))

    failed_rerun = False
    if ('site' in raw or 'site_failed' in raw) and 'baseline' in raw:
        ratios = paired(raw, 'site', 'baseline', lambda a, b: a / b)
        r = median(ratios)
        add('pair_build', '1. pair build: site.yml / baseline.sh (fresh containers)',
            median(secs(raw, 'site')), median(secs(raw, 'baseline')), r, '<= 1.5', le(r, 1.5),
            'per round: ' + ', '.join('%.2f' % x for x in ratios), ('site', 'baseline'))
    if 'rerun' in raw and 'site' in raw:
        ratios = paired(raw, 'rerun', 'site', lambda a, b: a / b)
        r = median(ratios)
        changed = [int(v['note'].split('=')[1]) for dummy, v in sorted(raw['rerun'].items())]
        failed_rerun = any(c != 0 for c in changed)
        add('rerun', '2. re-run: 2nd site.yml / 1st site.yml', median(secs(raw, 'rerun')),
            median(secs(raw, 'site')), r, '<= 0.3, changed=0', le(r, 0.3) and not failed_rerun,
            'changed per re-run: %s' % ', '.join(map(str, changed)), ('rerun',))
        data['rerun']['changed'] = changed
    if 'clone_module' in raw and 'clone_bare' in raw:
        bare_v = {r: raw['clone_bare'][r]['seconds'] + raw['clone_verify'][r]['seconds']
                  for r in raw['clone_bare'] if r in raw.get('clone_verify', {})}
        raw['clone_bare_verify'] = {r: dict(seconds=s, note='') for r, s in bare_v.items()}
        notes = [v['note'] for dummy, v in sorted(raw['clone_module'].items())]
        verified = all('verified=True' in n for n in notes)
        den_metric = 'clone_bare_verify' if verified else 'clone_bare'
        ratios = paired(raw, 'clone_module', den_metric, lambda a, b: a / b)
        extra = paired(raw, 'clone_module', den_metric, lambda a, b: a - 1.05 * b)
        fixed = paired(raw, 'clone_module', den_metric, lambda a, b: a - b)
        r = median(ratios)
        size = int(meta.get('clone_db_bytes', 0)) / 2 ** 30
        add('clone', '3. clone: module (ansible ad hoc) / bare pg_basebackup%s' % (
            ' + pg_verifybackup' if verified else ''),
            median(secs(raw, 'clone_module')), median(secs(raw, den_metric)), r,
            '<= 1.05 + 2 s', le(median(extra), 2.0),
            'database %.2f GiB (pgbench -s %s); module - bare = %s; module / bare pg_basebackup alone = %s'
            % (size, meta.get('clone_scale'), fmt(median(fixed)),
               fmt(median(paired(raw, 'clone_module', 'clone_bare', lambda a, b: a / b)), None)))
        data['clone'].update(
            module_verified=verified, module_minus_bare_s=median(fixed),
            bare_pg_basebackup_median_s=median(secs(raw, 'clone_bare')),
            pg_verifybackup_median_s=median(secs(raw, 'clone_verify')),
            module_notes=notes, database_bytes=int(meta.get('clone_db_bytes', 0)),
            cluster_bytes=int(meta.get('clone_cluster_bytes', 0)))
    if 'scale3' in raw or 'scale3_failed' in raw:
        ratios = paired(raw, 'scale3', 'site', lambda a, b: a / b)
        r = median(ratios)
        add('scale_out', '4. scale-out: site.yml 1+3 standbys / 1+1 standby', median(secs(raw, 'scale3')),
            median(secs(raw, 'site')), r, '<= 1.3', le(r, 1.3),
            'per round: ' + ', '.join('%.2f' % x for x in ratios), ('scale3', 'site'))
    if 'switchover_window' in raw or 'switchover_failed' in raw:
        ratios = paired(raw, 'switchover_window', 'switchover_hand', lambda a, b: a / b)
        window = median(secs(raw, 'switchover_window'))
        add('switchover', '5. switchover: switchover.yml write window / hand-run stop + pg_promote()', window,
            median(secs(raw, 'switchover_hand')), median(ratios), 'window <= 5 s', le(window, 5),
            'per round: ' + ', '.join('%.2f' % x for x in ratios), ('switchover',))

    prof = {name: profile_summary(results, name) for name in ('site', 'rerun', 'scale3')}
    prof = {k: v for k, v in prof.items() if v['runs']}

    head = [
        '# hotstandby.postgresql benchmark',
        '',
        '%s, %s round(s)%s, %s cores, %s RAM, %s, kernel %s, ansible-core %s, Docker %s, '
        'lab suite %s (PostgreSQL %s), commit %s; load average at start %s, at end %s; bench runtime %.0f s.' % (
            meta.get('date'), meta.get('rounds'), ' (BENCH_QUICK smoke run)' if meta.get('quick') == '1' else '',
            meta.get('nproc'), meta.get('memory'), meta.get('host_os'), meta.get('kernel'),
            meta.get('ansible_core'), meta.get('docker'), meta.get('suite'), meta.get('postgresql'),
            meta.get('commit'), meta.get('load_at_start'), meta.get('load_at_end'),
            float(meta.get('runtime_s', 0))),
        '',
        'Ratios are medians of per-round ratios (A and B measured in the same round, order alternating); '
        'absolute times are medians over the rounds.',
        '',
        '| measurement | A (median) | B (median) | A / B | target | result | notes |',
        '|---|---|---|---|---|---|---|',
    ]
    lines = head + rows
    for name, title in (('site', 'site.yml on fresh containers (1 primary + 1 standby)'),
                        ('rerun', 'site.yml re-run (nothing to do)'),
                        ('scale3', 'site.yml on fresh containers (1 primary + 3 standbys)')):
        if name not in prof:
            continue
        p = prof[name]
        lines += ['', '## Where the time goes: %s' % title, '',
                  'profile_tasks, median over %d run(s); sum of task times %.1f s; fact gathering %.1f s.'
                  % (p['runs'], p['total_s'] or 0, p['facts_s'] or 0), '',
                  '| task | median s | per play, first round (slowest first) |', '|---|---|---|']
        lines += ['| %s | %.2f | %s |' % (t['task'].replace('|', '\\|'), t['median_s'],
                                          ' + '.join('%.2f' % x for x in t['first_run_split_s']))
                  for t in p['top']]
    raw_lines = ['', '## Raw seconds per round', '', '| metric | ' + ' | '.join(
        'round %d' % r for r in range(1, int(meta.get('rounds', 1)) + 1)) + ' |',
        '|---|' + '---|' * int(meta.get('rounds', 1))]
    for metric in sorted(raw):
        raw_lines.append('| %s | %s |' % (metric, ' | '.join(
            '%.1f' % raw[metric][r]['seconds'] if r in raw[metric] else '-'
            for r in range(1, int(meta.get('rounds', 1)) + 1))))
    lines += raw_lines
    md = '\n'.join(lines) + '\n'
    with open(os.path.join(results, 'results.md'), 'w') as f:
        f.write(md)
    out = dict(meta=meta, results=data, profile=prof,
               raw={m: {str(r): v for r, v in sorted(x.items())} for m, x in raw.items()})
    with open(os.path.join(results, 'results.json'), 'w') as f:
        json.dump(out, f, indent=2, sort_keys=True)
    sys.stdout.write(md)
    if failed_rerun:
        sys.stderr.write('bench: FAIL: a re-run of site.yml reported changes (see the table)\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
