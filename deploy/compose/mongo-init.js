// Runs once, when the mongo container initialises an empty data volume (docker-entrypoint-initdb.d), as the root
// user: creates the backend's own user, allowed to read and write its one database and nothing else.
const dbName = process.env.MONGODB_DB || "voiceagent";
db.getSiblingDB(dbName).createUser({
  user: "voiceagent",
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: [{ role: "readWrite", db: dbName }],
});
