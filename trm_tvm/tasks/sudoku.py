"""Sudoku, the TRM paper's task: own generator of unique-solution puzzles, the paper's augmentations, a text format.

Grids are int arrays of 81 cells, row-major, 0 = blank. The model reads the puzzle digits (vocabulary 10) and
predicts every cell's digit (class = digit - 1).
Generation: a random full grid (randomised backtracking), then cells are blanked in random order as long as the
solution stays unique, until the puzzle has its target clue count (drawn uniformly from [min_clues, max_clues]).
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from trm_tvm.errors import UserError, atomic_write_bytes

GENERATOR_VERSION = 1
TEST_SEED_OFFSET = 1000
ALL = 0x3FE                                   # bits 1..9
BOX = [(i // 27) * 3 + (i % 9) // 3 for i in range(81)]


def _masks(cells: list[int]) -> tuple[list[int], list[int], list[int]] | None:
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, v in enumerate(cells):
        if v:
            bit, r, c, b = 1 << v, i // 9, i % 9, BOX[i]
            if (rows[r] | cols[c] | boxes[b]) & bit:
                return None
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    return rows, cols, boxes


def _search(cells, rows, cols, boxes, limit, rng=None, first=None) -> int:
    """Count solutions up to `limit` (most-constrained cell first); the first one found is copied into `first`."""
    best, best_mask, best_n = -1, 0, 10
    for i in range(81):
        if not cells[i]:
            mask = ALL & ~(rows[i // 9] | cols[i % 9] | boxes[BOX[i]])
            n = bin(mask).count("1")
            if n < best_n:
                best, best_mask, best_n = i, mask, n
                if n <= 1:
                    break
    if best < 0:
        if first is not None and not first:
            first.extend(cells)
        return 1
    digits = [d for d in range(1, 10) if best_mask >> d & 1]
    if rng is not None:
        digits = [digits[j] for j in rng.permutation(len(digits))]
    r, c, b = best // 9, best % 9, BOX[best]
    found = 0
    for d in digits:
        bit = 1 << d
        cells[best] = d
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
        found += _search(cells, rows, cols, boxes, limit - found, rng, first)
        rows[r] &= ~bit
        cols[c] &= ~bit
        boxes[b] &= ~bit
        if found >= limit:
            break
    cells[best] = 0
    return found


def count_solutions(grid, limit: int = 2) -> int:
    cells = [int(v) for v in grid]
    m = _masks(cells)
    return 0 if m is None else _search(cells, *m, limit)


def is_valid_solution(grid) -> bool:
    g = np.asarray(grid).reshape(9, 9)
    want = set(range(1, 10))
    return all(set(g[i]) == want and set(g[:, i]) == want and
               set(g[3 * (i // 3): 3 * (i // 3) + 3, 3 * (i % 3): 3 * (i % 3) + 3].ravel()) == want for i in range(9))


def random_solution(rng: np.random.Generator) -> np.ndarray:
    first: list[int] = []
    _search([0] * 81, [0] * 9, [0] * 9, [0] * 9, 1, rng, first)
    return np.array(first, np.int64)


def _stays_unique(puzzle: np.ndarray, i: int, answer: int) -> bool:
    """After blanking cell i of a unique puzzle: unique iff no other digit at i admits a solution."""
    cells = [int(v) for v in puzzle]
    for d in range(1, 10):
        if d == answer:
            continue
        cells[i] = d
        m = _masks(cells)
        if m is not None and _search(cells, *m, 1):
            return False
    return True


def make_puzzle(rng: np.random.Generator, clues: int) -> tuple[np.ndarray, np.ndarray]:
    solution = random_solution(rng)
    puzzle = solution.copy()
    for i in rng.permutation(81):
        if np.count_nonzero(puzzle) <= clues:
            break
        puzzle[i] = 0
        if not _stays_unique(puzzle, i, int(solution[i])):
            puzzle[i] = solution[i]
    return puzzle, solution


def generate(n: int, seed: int, min_clues: int, max_clues: int) -> tuple[np.ndarray, np.ndarray]:
    """(puzzles, solutions), each (n, 81); puzzle i depends only on (seed, i)."""
    puzzles = np.zeros((n, 81), np.int64)
    solutions = np.zeros((n, 81), np.int64)
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        puzzles[k], solutions[k] = make_puzzle(rng, int(rng.integers(min_clues, max_clues + 1)))
    return puzzles, solutions


def cached_generate(n: int, seed: int, min_clues: int, max_clues: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    key = hashlib.sha1(json.dumps([GENERATOR_VERSION, n, seed, min_clues, max_clues]).encode()).hexdigest()[:10]
    path = Path(cache) / f"sudoku-{key}.npz"
    if n == 0:
        return np.zeros((0, 81), np.int64), np.zeros((0, 81), np.int64)
    if not path.exists():
        print(f"sudoku: generating {n} puzzles (seed {seed}, {min_clues}-{max_clues} clues) into {path}", flush=True)
        p, s = generate(n, seed, min_clues, max_clues)
        buf = io.BytesIO()
        np.savez(buf, puzzles=p, solutions=s)
        atomic_write_bytes(path, buf.getvalue())
    with np.load(path) as d:
        return d["puzzles"], d["solutions"]


def augment(puzzles: np.ndarray, solutions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The paper's validity-preserving augmentations, one random draw per puzzle: digit relabelling, band and stack
    permutations, row/column permutations within them, transpose. Works on puzzles (0 = blank) and solutions."""
    out_p, out_s = np.empty_like(puzzles), np.empty_like(solutions)
    for k in range(len(puzzles)):
        rows = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
        cols = np.concatenate([3 * s + rng.permutation(3) for s in rng.permutation(3)])
        idx = rows[:, None] * 9 + cols[None, :]
        if rng.random() < 0.5:
            idx = idx.T
        relabel = np.concatenate([[0], 1 + rng.permutation(9)])
        out_p[k] = relabel[puzzles[k][idx.ravel()]]
        out_s[k] = relabel[solutions[k][idx.ravel()]]
    return out_p, out_s


def _augment_targets(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p, s = augment(x, y + 1, rng)
    return p, s - 1


def load(cfg, cache: Path, train: bool = True, test_limit: int | None = None):
    from trm_tvm.model import Shape
    from trm_tvm.tasks import Dataset

    if not 17 <= cfg.min_clues <= cfg.max_clues <= 80:
        raise UserError(f"task clue range {cfg.min_clues}-{cfg.max_clues} is outside 17-80",
                        "a unique-solution Sudoku has at least 17 clues")
    # puzzle i depends only on (seed, i): a prefix of the test set is the same puzzles however many are generated
    p_tr, s_tr = cached_generate(cfg.n_train if train else 0, cfg.seed, cfg.min_clues, cfg.max_clues, cache)
    n_test = min(cfg.n_test, test_limit or cfg.n_test)
    p_te, s_te = cached_generate(n_test, cfg.seed + TEST_SEED_OFFSET, cfg.min_clues, cfg.max_clues, cache)
    return Dataset(Shape(tokens=81, classes=9, vocab=10, per_token=True), p_tr, s_tr - 1, p_te, s_te - 1,
                   [str(d) for d in range(1, 10)], test_groups=np.count_nonzero(p_te, axis=1),
                   augment=_augment_targets if cfg.augment else None,
                   info={"source": f"own generator v{GENERATOR_VERSION}, seeds {cfg.seed}/{cfg.seed + TEST_SEED_OFFSET}"})


def read_puzzle_file(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines '<81 digits puzzle, 0 = blank> <81 digits solution>' -> (puzzles, solution classes, clue counts)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"puzzle file {path} does not exist", "check the path")
    puzzles, solutions = [], []
    for no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or any(len(p) != 81 or not p.isdigit() for p in parts):
            raise UserError(f"{path}:{no}: expected '<81 digits puzzle> <81 digits solution>'",
                            "one puzzle per line, 0 for a blank")
        p, s = (np.array([int(ch) for ch in part], np.int64) for part in parts)
        if not is_valid_solution(s) or np.any((p != 0) & (p != s)):
            raise UserError(f"{path}:{no}: the solution is not a valid grid matching the puzzle's clues",
                            "fix that line")
        puzzles.append(p)
        solutions.append(s)
    if not puzzles:
        raise UserError(f"puzzle file {path} has no puzzles", "one puzzle per line")
    p, s = np.stack(puzzles), np.stack(solutions)
    return p, s - 1, np.count_nonzero(p, axis=1)
