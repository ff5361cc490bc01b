// Node Sidequest's own code against a Postgres database, for the tests that share one with sidequest_sql.
//
//   node sidequest.mjs migrate URL [SCHEMA]          Sidequest's PostgresBackend.migrate()
//   node sidequest.mjs migrate-first N URL [SCHEMA]  only Sidequest's first N migrations, as a release
//                                                    that had no more (knex's migrate.up, N times)
//   node sidequest.mjs enqueue JSON URL [SCHEMA]     Sidequest.build(SendMail)…enqueue(…args), JSON
//                                                    being {queue, args, constructorArgs, timeout,
//                                                    maxAttempts, retryDelay, backoffStrategy}
//   node sidequest.mjs get ID URL [SCHEMA]           Sidequest.job.get(ID)
//
// URL is a postgresql:// URL; SCHEMA goes to Sidequest as knex's searchPath, which is how Sidequest
// puts its tables (knex's included) in a schema. The last line on stdout is the outcome as JSON:
// {completed, pending} (knex's migration names) for the migrations, the job's data otherwise.
// Sidequest's own log lines come before it. Exit status 1 when something failed, with the reason
// on stderr: Sidequest's migrate() logs a failed migration instead of throwing, so a migration
// still pending afterwards is a failure here.

import PostgresBackend from "@sidequest/postgres-backend";

function backendConfig(url, schema) {
  return schema ? { connection: url, searchPath: schema } : { connection: url };
}

async function migrations(backend) {
  const [completed, pending] = await backend.knex.migrate.list();
  return { completed: completed.map((migration) => migration.name), pending: pending.map((migration) => migration.file) };
}

async function migrate(url, schema) {
  const backend = new PostgresBackend(backendConfig(url, schema));
  try {
    await backend.migrate();
    const outcome = await migrations(backend);
    if (outcome.pending.length > 0) {
      throw new Error(`Sidequest's migrate() left migrations pending: ${outcome.pending.join(", ")}`);
    }
    return outcome;
  } finally {
    await backend.close();
  }
}

async function migrateFirst(count, url, schema) {
  const backend = new PostgresBackend(backendConfig(url, schema));
  try {
    if (schema) {
      await backend.knex.raw("CREATE SCHEMA IF NOT EXISTS ??", [schema]);
    }
    for (let i = 0; i < Number(count); i++) {
      await backend.knex.migrate.up();
    }
    return await migrations(backend);
  } finally {
    await backend.close();
  }
}

// Sidequest itself (engine, dashboard) loads only for the commands that use it: it takes a while.
async function withSidequest(url, schema, work) {
  const { Sidequest } = await import("sidequest");
  await Sidequest.configure({
    backend: { driver: "@sidequest/postgres-backend", config: backendConfig(url, schema) },
    skipMigration: true,
    logger: { level: "warn", json: false },
  });
  try {
    return await work(Sidequest);
  } finally {
    await Sidequest.getBackend().close();
  }
}

async function enqueue(spec, url, schema) {
  const job = JSON.parse(spec);
  const { SendMail } = await import("./jobs.mjs");
  return withSidequest(url, schema, (Sidequest) => {
    let builder = Sidequest.build(SendMail).queue(job.queue);
    if (job.constructorArgs) builder = builder.with(...job.constructorArgs);
    if (job.timeout !== undefined) builder = builder.timeout(job.timeout);
    if (job.maxAttempts !== undefined) builder = builder.maxAttempts(job.maxAttempts);
    if (job.retryDelay !== undefined) builder = builder.retryDelay(job.retryDelay);
    if (job.backoffStrategy !== undefined) builder = builder.backoffStrategy(job.backoffStrategy);
    return builder.enqueue(...job.args);
  });
}

async function get(id, url, schema) {
  return withSidequest(url, schema, async (Sidequest) => {
    const job = await Sidequest.job.get(Number(id));
    if (job === undefined) throw new Error(`Sidequest finds no job ${id}`);
    return job;
  });
}

const commands = { migrate, "migrate-first": migrateFirst, enqueue, get };
const [command, ...rest] = process.argv.slice(2);
if (!(command in commands)) {
  console.error(`usage: node sidequest.mjs ${Object.keys(commands).join("|")} … URL [SCHEMA]`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await commands[command](...rest)));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
