"""The trainer benchmark's peers, on the trainer's own matrices.

Reads fit/validation/test Parquet files written by the trainer
(TRAINER_EXPORT_MATRICES_DIR), trains LightGBM, scikit-learn's
HistGradientBoostingClassifier and LogisticRegression with the trainer's
settings (31 leaves, learning rate 0.1, up to 500 trees with early stopping
after 20 on the validation rows, balanced class weights, L2 1.0), on the
same cores, and prints one JSON line per model: fit seconds and test AUC.
"""
import json
import sys
import time

import numpy as np
import pyarrow.parquet as pq


def load(path):
    table = pq.read_table(path)
    names = [n for n in table.column_names if n != "label"]
    x = np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in names]).astype(np.float32)
    y = table.column("label").to_numpy().astype(np.int8)
    return x, y


def balanced(y):
    n, pos = len(y), int(y.sum())
    w_pos, w_neg = n / (2 * max(pos, 1)), n / (2 * max(n - pos, 1))
    return np.where(y == 1, w_pos, w_neg)


def main(directory, threads, repeats):
    from sklearn.metrics import roc_auc_score

    x_fit, y_fit = load(f"{directory}/fit.parquet")
    x_val, y_val = load(f"{directory}/validation.parquet")
    x_test, y_test = load(f"{directory}/test.parquet")
    w_fit, w_val = balanced(y_fit), balanced(y_val)
    results = []

    import lightgbm as lgb

    # LightGBM is the GBDT's target: timed `repeats` times, the median kept
    # (single runs vary by 20 % on a shared machine).
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model = lgb.LGBMClassifier(
            n_estimators=500, learning_rate=0.1, num_leaves=31, min_child_samples=20,
            reg_lambda=1.0, max_bin=255, n_jobs=threads, verbose=-1,
        )
        model.fit(
            x_fit, y_fit, sample_weight=w_fit,
            eval_set=[(x_val, y_val)], eval_sample_weight=[w_val],
            callbacks=[lgb.early_stopping(20, verbose=False)],
        )
        times.append(time.perf_counter() - started)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    results.append({"model": "lightgbm", "fit_seconds": float(np.median(times)), "fit_seconds_each": times,
                    "test_auc": auc, "trees": int(model.best_iteration_ or 0)})

    from sklearn.ensemble import HistGradientBoostingClassifier

    started = time.perf_counter()
    model = HistGradientBoostingClassifier(
        max_iter=500, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
        l2_regularization=1.0, max_bins=255, early_stopping=True, n_iter_no_change=20,
        scoring="loss", random_state=0,
    )
    model.fit(x_fit, y_fit, sample_weight=w_fit, X_val=x_val, y_val=y_val, sample_weight_val=w_val)
    fit = time.perf_counter() - started
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    results.append({"model": "sklearn_hist_gbdt", "fit_seconds": fit, "test_auc": auc, "trees": int(model.n_iter_)})

    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    model = make_pipeline(
        SimpleImputer(strategy="mean", add_indicator=True),
        StandardScaler(),
        LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000),
    )
    model.fit(x_fit, y_fit)
    fit = time.perf_counter() - started
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    results.append({"model": "sklearn_logistic_regression", "fit_seconds": fit, "test_auc": auc})

    try:
        from threadpoolctl import threadpool_info
        blas = [f"{i.get('internal_api')}:{i.get('architecture')}:{i.get('num_threads')}" for i in threadpool_info()]
    except ImportError:
        blas = []
    for r in results:
        r["threads"] = threads
        r["blas"] = blas
        print(json.dumps(r))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
