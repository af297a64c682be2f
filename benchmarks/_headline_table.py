"""Headline table of issue 13 (docs/exact_sampling.md) from a finished extrapolation_cpu run directory:
    python benchmarks/_headline_table.py RUN_DIR [TRAINING_SECONDS]
Pulls against the exact torus values, ESS/N, tau_int(Q), reliability flags and wall time per
effective Q (n_eff of <Q>), with and without the training cost."""
import json, subprocess, sys, os
if len(sys.argv) < 2:
    sys.exit("usage: python benchmarks/_headline_table.py RUN_DIR [TRAINING_SECONDS]")
run = sys.argv[1]
t_train = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0   # training + training-ensemble wall time
def exact(beta, L):
    out = json.loads(subprocess.run(["campaign", "exact", "--group", "u1", "--beta", str(beta), "--L", str(L), "--max-loop", "4"],
                                    capture_output=True, text=True, check=True).stdout)
    from campaign import exact as X
    out["log_z"] = float(X.log_partition_function("u1", beta, L))
    return out
def pull(o, ev):
    return (o["value"] - ev) / o["error"] if o["error"] else float("inf")
rows = []
print("| beta | L | source | N | ESS/N | W11 pull | W22 pull | W44 pull | chi_t | chi_t pull | rel err | tau_int(Q) | reliable | wall s | s per eff. Q | s per eff. Q incl. training |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for L in (16, 32):
    for beta in (1, 3, 5, 7):
        e = exact(beta, L)
        for src in ("from_b1_L16", "hmc"):
            f = f"{run}/results/measure/u1/{src}/b{beta}_L{L}.json"
            if not os.path.exists(f):
                print(f"| {beta} | {L} | {src} | missing |"); continue
            d = json.load(open(f)); ob = d["observables"]; a = d["attrs"]
            w = [pull(ob[k], e["wilson_loops"][k[2:]]) for k in ("W_1x1", "W_2x2", "W_4x4")]
            c = d["chi_t"]; q = ob["Q"]
            wall = a.get("wall_time_s", float("nan"))
            neff_q = q.get("n_eff") or float("nan")
            ess = d["diagnostics"].get("ess_per_sample", {}).get("value") if src != "hmc" else None
            tau = q.get("tau_int")
            rel = c["reliable"] and q["reliable"]
            taus = "" if tau is None else "%.1f(%.1f)" % (tau, q.get("tau_int_error") or 0)
            ess_s = "" if ess is None else "%.2f" % ess
            per = wall / neff_q
            incl = (wall + t_train) / neff_q if src != "hmc" else per
            name = "SMC (model drift)" if src != "hmc" else "HMC"
            print(f"| {beta} | {L} | {name} | {d['n_configs']} | {ess_s} | {w[0]:+.2f} | {w[1]:+.2f} | {w[2]:+.2f} | "
                  f"{c['value']:.5f}({c['error']:.5f}) | {pull(c, e['chi_t']):+.2f} | {c['error']/c['value']:.0%} | "
                  f"{taus} | {'yes' if rel else 'no: ' + (c['note'] or q['note'])[:60]} | "
                  f"{wall:.0f} | {per:.2f} | {incl:.2f} |")
        print(f"| {beta} | {L} | exact | | | | | | {e['chi_t']:.5f} | | | | | | | |")
