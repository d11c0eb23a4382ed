-- Opens and clicks of a sent mail, where the administrator tracks them: the first of each.
ALTER TABLE crm_mail_delivery ADD COLUMN opened_at timestamptz;
ALTER TABLE crm_mail_delivery ADD COLUMN clicked_at timestamptz;
