/**
 * The part of ml-regression 6.3.0 (no bundled types) that nodes/anomaly/maintenance.ts uses.
 * Coefficients are ordered by power: [intercept, x, x^2, ...].
 */
declare module 'ml-regression' {
  type Numbers = number[] | Float64Array;
  export class SimpleLinearRegression {
    constructor(x: Numbers, y: Numbers);
    slope: number;
    intercept: number;
    coefficients: number[];
  }
  export class TheilSenRegression {
    constructor(x: Numbers, y: Numbers);
    slope: number;
    intercept: number;
    coefficients: number[];
  }
  export class PolynomialRegression {
    constructor(x: Numbers, y: Numbers, degree: number);
    degree: number;
    powers: number[];
    coefficients: number[];
  }
}
