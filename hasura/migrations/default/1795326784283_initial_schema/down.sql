ALTER TABLE public.posts_tags DROP CONSTRAINT posts_tags_tags_id_fkey;

ALTER TABLE public.posts_tags DROP CONSTRAINT posts_tags_posts_id_fkey;

ALTER TABLE public.posts DROP CONSTRAINT posts_author_id_fkey;

ALTER TABLE public.comments DROP CONSTRAINT comments_author_id_fkey;

ALTER TABLE public.comments DROP CONSTRAINT comments_post_id_fkey;

-- HAZARD: DELETES_DATA: drops table users and all its rows
DROP TABLE public.users;

-- HAZARD: DELETES_DATA: drops table tags and all its rows
DROP TABLE public.tags;

-- HAZARD: DELETES_DATA: drops table posts_tags and all its rows
DROP TABLE public.posts_tags;

-- HAZARD: DELETES_DATA: drops table posts and all its rows
DROP TABLE public.posts;

-- HAZARD: DELETES_DATA: drops table comments and all its rows
DROP TABLE public.comments;

DROP TYPE public.post_status;
