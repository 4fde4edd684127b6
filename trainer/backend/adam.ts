/**
 * Adam on plain Float32Arrays, the same arithmetic as tf.train.adam (β1 0.9, β2 0.999, ε 1e-7, bias correction
 * through running powers of β). Kept in JS because the model is small (~19k weights: microseconds per step)
 * and so its state can be checkpointed and restored exactly.
 */

export interface AdamState {
  /** Steps taken so far. */
  t: number;
  /** First and second moments, one pair per weight array. */
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  private t = 0;
  private m: Float32Array[];
  private v: Float32Array[];
  constructor(
    sizes: readonly number[],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-7,
  ) {
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
  }

  /** weights[k] -= lr · m̂ / (√v̂ + ε), in place. */
  update(weights: Float32Array[], grads: ArrayLike<number>[], lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    const c1 = 1 - Math.pow(b1, this.t);
    const c2 = 1 - Math.pow(b2, this.t);
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k];
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
        const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
        w[i] -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
    }
  }

  getState(): AdamState {
    return { t: this.t, m: this.m.map((a) => a.slice()), v: this.v.map((a) => a.slice()) };
  }

  setState(s: AdamState): void {
    if (s.m.length !== this.m.length || s.m.some((a, k) => a.length !== this.m[k].length)) {
      throw new Error(`Adam state does not fit this model: ${s.m.length} weight arrays, expected ${this.m.length}`);
    }
    this.t = s.t;
    this.m = s.m.map((a) => a.slice());
    this.v = s.v.map((a) => a.slice());
  }
}
