/**
 * Unit texts several test files share.
 */

/** The app unit fleet users submit, as MISSION.md shows it (a template with [X-Fleet] Conflicts). */
export const MISSION_APP_UNIT = `[Unit]
Description=app
After=docker.service
Requires=docker.service
[Service]
Restart=always
TimeoutStartSec=0
ExecStartPre=-/usr/bin/docker kill app-%i
ExecStartPre=-/usr/bin/docker rm app-%i
ExecStartPre=/usr/bin/docker pull busybox:latest
ExecStart=/usr/bin/docker run --name app-%i busybox:latest
ExecStop=/usr/bin/docker stop app-%i
[X-Fleet]
Conflicts=app@*.service
`;
