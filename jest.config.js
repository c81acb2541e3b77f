const ESM_ONLY = '(is-any-array|ml-array-max|ml-array-min|ml-array-rescale|ml-kernel-polynomial|ml-kernel-sigmoid)';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }],
    // ES-module-only dependencies of ml-regression: Node 20 requires them natively, jest's runtime cannot (before Node 24.9).
    [`/node_modules/${ESM_ONLY}/.+\\.js$`]: ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!${ESM_ONLY}/)`],
  // Integration and browser tests start real servers: one file at a time keeps ports and CPU calm.
  maxWorkers: 1,
  testTimeout: 20000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  // The temp dirs the runtimes, brokers and stores of a run write (hundreds of MB a run) go under one directory that
  // is removed at the end: test/support/services.ts tmpDir.
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
};
