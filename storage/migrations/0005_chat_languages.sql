-- 0005_chat_languages: the language a chat chose with /language (survives restarts).
--
-- One row per chat that chose; a chat without a row speaks its user's Telegram language
-- (private chats) or BOT_LANGUAGE (groups, alerts). `language` is a code the bot speaks ('en',
-- 'ru'); `updated_at` is UTC text like every other table.
CREATE TABLE chat_languages (
    chat_id    INTEGER PRIMARY KEY,
    language   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
